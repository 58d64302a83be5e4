package dns_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/alkdev/alknet/core/store"
	"github.com/alkdev/alknet/dns"
	mdns "github.com/miekg/dns"
)

// A node's zone in its database, answered over classic UDP.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "dns-example")
	defer os.RemoveAll(dir)
	db, _ := store.Open(filepath.Join(dir, "alknet.db"))
	defer db.Close()
	st, _ := dns.NewStore(ctx, db, dns.StoreConfig{Follow: true})
	defer st.Close()
	_ = st.AddZone(ctx, dns.Zone{Name: "example.test", NS: []string{"ns1.example.test"}})
	rr, _ := dns.ParseRecord("www.example.test", "A", "192.0.2.1", 60)
	_, _ = st.Add(ctx, rr)

	srv, _ := dns.NewServer(dns.Config{Handler: dns.NewResolver(st, nil)})
	l, err := srv.ListenClassic("127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	go l.Serve(ctx)
	defer l.Close()

	q := new(mdns.Msg)
	q.SetQuestion("www.example.test.", mdns.TypeA)
	r, _, err := new(mdns.Client).Exchange(q, l.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.Answer[0])
	// Output: www.example.test.	60	IN	A	192.0.2.1
}

// Zones from a master file, without a database.
func ExampleNewZones() {
	rrs, _ := dns.ParseMasterFile(strings.NewReader(`
@    3600 IN SOA ns1 hostmaster 1 3600 600 604800 300
@    3600 IN NS  ns1
*.w  300  IN TXT "wildcard"
`), "example.test")
	zs, _ := dns.NewZones(rrs)
	res, _ := zs.Lookup("anything.w.example.test.", mdns.TypeTXT)
	fmt.Println(res.Answer[0])
	res, _ = zs.Lookup("nope.example.test.", mdns.TypeA)
	fmt.Println(mdns.RcodeToString[res.Rcode], res.Ns[0].Header().Ttl)
	// Output:
	// anything.w.example.test.	300	IN	TXT	"wildcard"
	// NXDOMAIN 300
}
