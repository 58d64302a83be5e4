// Command dnsbench is the load generator of bench/dns.sh: it writes a test
// CA with a certificate for a name, writes a zone of N address records, and
// measures queries per second against a DNS server over UDP or DNS over
// QUIC (RFC 9250) with many concurrent clients. It lives outside go.work
// (GOWORK=off), like bench/callbench.
//
//	dnsbench cert DIR NAME              # DIR/ca.pem, DIR/cert.pem, DIR/key.pem
//	dnsbench zone ORIGIN N              # master file on stdout
//	dnsbench load -proto udp|doq -addr HOST:PORT -name NAME [-c 100] [-conns 10] [-d 5s] [-ca FILE -sni NAME]
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alkdev/alknet/dns"
	mdns "github.com/miekg/dns"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: dnsbench cert|zone|load ...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "cert":
		if len(os.Args) != 4 {
			err = errors.New("usage: dnsbench cert DIR NAME")
			break
		}
		err = writeCert(os.Args[2], os.Args[3])
	case "zone":
		if len(os.Args) != 4 {
			err = errors.New("usage: dnsbench zone ORIGIN N")
			break
		}
		err = writeZone(os.Args[2], os.Args[3])
	case "load":
		err = load(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dnsbench:", err)
		os.Exit(1)
	}
}

func writeCert(dir, name string) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "dnsbench CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return err
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	for f, b := range map[string]*pem.Block{
		"ca.pem":   {Type: "CERTIFICATE", Bytes: caDER},
		"cert.pem": {Type: "CERTIFICATE", Bytes: der},
		"key.pem":  {Type: "PRIVATE KEY", Bytes: kder},
	} {
		if err := os.WriteFile(filepath.Join(dir, f), pem.EncodeToMemory(b), 0o600); err != nil {
			return err
		}
	}
	return nil
}

func writeZone(origin, count string) error {
	n, err := strconv.Atoi(count)
	if err != nil {
		return err
	}
	origin = mdns.Fqdn(origin)
	fmt.Printf("$ORIGIN %s\n$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 604800 300\n@ IN NS ns1\nns1 IN A 127.0.0.1\n", origin)
	for i := range n - 3 {
		fmt.Printf("host%d IN A 10.%d.%d.%d\n", i, i>>16&255, i>>8&255, i&255)
	}
	return nil
}

func load(args []string) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	proto := fs.String("proto", "udp", "udp or doq")
	addr := fs.String("addr", "", "server host:port")
	name := fs.String("name", "", "name to ask for (type A)")
	workers := fs.Int("c", 100, "concurrent clients")
	conns := fs.Int("conns", 10, "DoQ connections the clients share")
	dur := fs.Duration("d", 5*time.Second, "how long to run")
	caFile := fs.String("ca", "", "CA of the DoQ server's certificate")
	sni := fs.String("sni", "", "DoQ server name")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *addr == "" || *name == "" {
		return errors.New("-addr and -name are required")
	}
	var ask func(ctx context.Context, worker int) error
	switch *proto {
	case "udp":
		udp := make([]*mdns.Conn, *workers)
		for i := range udp {
			c, err := (&mdns.Client{Net: "udp"}).Dial(*addr)
			if err != nil {
				return err
			}
			defer c.Close()
			udp[i] = c
		}
		ask = func(ctx context.Context, w int) error {
			q := new(mdns.Msg)
			q.SetQuestion(mdns.Fqdn(*name), mdns.TypeA)
			c := udp[w]
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			if err := c.WriteMsg(q); err != nil {
				return err
			}
			r, err := c.ReadMsg()
			if err != nil {
				return err
			}
			return check(q, r)
		}
	case "doq":
		pool := x509.NewCertPool()
		if *caFile != "" {
			b, err := os.ReadFile(*caFile)
			if err != nil {
				return err
			}
			pool.AppendCertsFromPEM(b)
		}
		clients := make([]*dns.Client, *conns)
		for i := range clients {
			clients[i] = &dns.Client{Addr: *addr, TLSConfig: &tls.Config{ServerName: *sni, RootCAs: pool}}
			defer clients[i].Close()
		}
		ask = func(ctx context.Context, w int) error {
			q := new(mdns.Msg)
			q.SetQuestion(mdns.Fqdn(*name), mdns.TypeA)
			qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			r, err := clients[w%len(clients)].Exchange(qctx, q)
			if err != nil {
				return err
			}
			return check(q, r)
		}
	default:
		return fmt.Errorf("-proto %q: want udp or doq", *proto)
	}
	// One query per client first: connections are set up before timing.
	for w := range min(*workers, max(*conns, 1)) {
		if err := ask(context.Background(), w); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), *dur)
	defer cancel()
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	start := time.Now()
	var wg sync.WaitGroup
	for w := range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if err := ask(ctx, w); err != nil {
					if ctx.Err() == nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
					}
					continue
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	fmt.Printf("%.0f\n", float64(ok.Load())/secs)
	if n := failed.Load(); n > 0 {
		fmt.Fprintf(os.Stderr, "%s %s: %d failed queries (first: %v)\n", *proto, *addr, n, firstErr.Load())
	}
	return nil
}

func check(q, r *mdns.Msg) error {
	if r.Id != q.Id {
		return fmt.Errorf("answer id %d, want %d", r.Id, q.Id)
	}
	if r.Rcode != mdns.RcodeSuccess || len(r.Answer) != 1 {
		return fmt.Errorf("rcode %s with %d answers", mdns.RcodeToString[r.Rcode], len(r.Answer))
	}
	return nil
}
