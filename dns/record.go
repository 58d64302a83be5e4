package dns

import (
	"fmt"
	"strings"

	mdns "github.com/miekg/dns"
)

// Limits of one record as the CLI, the call operations and the store take it.
const (
	// MaxTTL is the largest TTL (RFC 2181 section 8).
	MaxTTL = 1<<31 - 1
	// MaxValueLen bounds the presentation form of one record's data.
	MaxValueLen = 8192
	// DefaultTTL is the TTL of a record added without one.
	DefaultTTL = 300
)

// supportedTypes are the record types a zone may hold.
var supportedTypes = map[uint16]bool{
	mdns.TypeSOA: true, mdns.TypeNS: true, mdns.TypeA: true, mdns.TypeAAAA: true,
	mdns.TypeCNAME: true, mdns.TypeTXT: true, mdns.TypeMX: true, mdns.TypeSRV: true,
	mdns.TypeCAA: true, mdns.TypeHTTPS: true, mdns.TypeSVCB: true, mdns.TypePTR: true,
}

// SupportedTypes lists the record types a zone may hold, in presentation
// form.
func SupportedTypes() []string {
	return []string{"SOA", "NS", "A", "AAAA", "CNAME", "TXT", "MX", "SRV", "CAA", "HTTPS", "SVCB", "PTR"}
}

// Record is one resource record in presentation form, as stored and listed.
type Record struct {
	// Zone is the apex of the zone that holds the record (set when listed).
	Zone string `json:"zone,omitempty"`
	// Name is the owner name, lower case, fully qualified (trailing dot).
	Name string `json:"name"`
	// Type is the record type mnemonic ("A", "HTTPS").
	Type string `json:"type"`
	// TTL in seconds.
	TTL uint32 `json:"ttl"`
	// Value is the record data in master-file presentation form.
	Value string `json:"value"`
}

// String is the record as one master-file line.
func (r Record) String() string {
	return fmt.Sprintf("%s\t%d\tIN\t%s\t%s", r.Name, r.TTL, r.Type, r.Value)
}

// RR parses the record.
func (r Record) RR() (mdns.RR, error) { return ParseRecord(r.Name, r.Type, r.Value, r.TTL) }

// CanonicalName checks that name is a domain name and returns it lower case
// and fully qualified. "@" and the empty name are refused.
func CanonicalName(name string) (string, error) {
	if name == "" || name == "@" || strings.ContainsFunc(name, isControl) {
		return "", fmt.Errorf("%w: %q", ErrBadName, name)
	}
	if _, ok := mdns.IsDomainName(name); !ok {
		return "", fmt.Errorf("%w: %q", ErrBadName, name)
	}
	// Escapes (\DDD, \.) and characters a master file must escape are
	// allowed by IsDomainName but make names that print differently than
	// they compare; keep to host-name characters, "_" and "/" (RFC 2317),
	// and "*" as a whole label.
	if strings.Contains(name, `\`) {
		return "", fmt.Errorf("%w: %q (escapes are not supported)", ErrBadName, name)
	}
	canon := mdns.CanonicalName(name)
	if canon != "." {
		for _, label := range strings.Split(strings.TrimSuffix(canon, "."), ".") {
			if label == "*" {
				continue
			}
			for _, c := range []byte(label) {
				if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '/') {
					return "", fmt.Errorf("%w: %q (labels hold letters, digits, '-', '_' and '/'; '*' only alone)", ErrBadName, name)
				}
			}
		}
	}
	return canon, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// ParseType returns the type number of a supported type mnemonic (any case).
func ParseType(typ string) (uint16, error) {
	t, ok := mdns.StringToType[strings.ToUpper(typ)]
	if !ok || !supportedTypes[t] {
		return 0, fmt.Errorf("%w: %q (supported: %s)", ErrBadType, typ, strings.Join(SupportedTypes(), ", "))
	}
	return t, nil
}

// ParseRecord builds a record from its parts in presentation form: name,
// type mnemonic, data and TTL. Names in the data are taken as fully
// qualified. A TXT value that does not start with a double quote is one
// string (split every 255 bytes), so `TXT hello world` is "hello world".
// The result's owner name is canonical (lower case, trailing dot).
func ParseRecord(name, typ, value string, ttl uint32) (mdns.RR, error) {
	owner, err := CanonicalName(name)
	if err != nil {
		return nil, err
	}
	t, err := ParseType(typ)
	if err != nil {
		return nil, err
	}
	if ttl > MaxTTL {
		return nil, fmt.Errorf("%w: %d (at most %d)", ErrBadTTL, ttl, MaxTTL)
	}
	value = strings.TrimSpace(value)
	if value == "" || len(value) > MaxValueLen || strings.ContainsFunc(value, isControl) {
		return nil, fmt.Errorf("%w: %s value must be 1 to %d printable characters", ErrBadValue, mdns.TypeToString[t], MaxValueLen)
	}
	if t == mdns.TypeTXT && !strings.HasPrefix(value, `"`) {
		value = quoteTXT(value)
	}
	line := fmt.Sprintf("%s %d IN %s %s", owner, ttl, mdns.TypeToString[t], value)
	rr, err := mdns.NewRR(line)
	if err != nil {
		return nil, fmt.Errorf("%w: %s %q: %s", ErrBadValue, mdns.TypeToString[t], value, parseReason(err))
	}
	if rr == nil || rr.Header().Rrtype != t || rr.Header().Name != owner {
		return nil, fmt.Errorf("%w: %s %q", ErrBadValue, mdns.TypeToString[t], value)
	}
	canonicalizeTargets(rr)
	if l := mdns.Len(rr); l > MaxMessageSize-512 {
		return nil, fmt.Errorf("%w: %s record of %d bytes", ErrBadValue, mdns.TypeToString[t], l)
	}
	return rr, nil
}

// parseReason is the useful part of a miekg/dns parse error.
func parseReason(err error) string {
	s := strings.TrimPrefix(err.Error(), "dns: ")
	// miekg/dns says `<what>: "<token>" at line: l:c`; keep <what>.
	if i := strings.LastIndex(s, `: "`); i >= 0 {
		s = s[:i]
	}
	return s
}

// quoteTXT turns free text into TXT character-strings of at most 255
// bytes each.
func quoteTXT(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		n := min(len(s), 255)
		// do not split inside an escape we add: escapes are added per byte
		chunk := s[:n]
		s = s[n:]
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte('"')
		for i := 0; i < len(chunk); i++ {
			c := chunk[i]
			if c == '"' || c == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(c)
		}
		b.WriteByte('"')
	}
	return b.String()
}

// canonicalizeTargets lower-cases the domain names inside rr's data that
// lookups follow (CNAME, NS, MX, SRV targets), so that the index compares
// them without case folding.
func canonicalizeTargets(rr mdns.RR) {
	switch r := rr.(type) {
	case *mdns.CNAME:
		r.Target = mdns.CanonicalName(r.Target)
	case *mdns.NS:
		r.Ns = mdns.CanonicalName(r.Ns)
	case *mdns.MX:
		r.Mx = mdns.CanonicalName(r.Mx)
	case *mdns.SRV:
		r.Target = mdns.CanonicalName(r.Target)
	case *mdns.SOA:
		r.Ns = mdns.CanonicalName(r.Ns)
		r.Mbox = mdns.CanonicalName(r.Mbox)
	}
}

// RecordOf is rr in presentation form.
func RecordOf(rr mdns.RR) Record {
	h := rr.Header()
	return Record{
		Name:  h.Name,
		Type:  mdns.TypeToString[h.Rrtype],
		TTL:   h.Ttl,
		Value: rdataString(rr),
	}
}

// rdataString is the presentation form of rr's data, without the header.
func rdataString(rr mdns.RR) string {
	return strings.TrimPrefix(rr.String(), rr.Header().String())
}

// checkRR validates a record given as a miekg/dns value (the Go API): a
// supported type, class IN, a valid owner name, a TTL in range. It returns
// a canonical copy.
func checkRR(rr mdns.RR) (mdns.RR, error) {
	if rr == nil {
		return nil, fmt.Errorf("%w: nil record", ErrBadValue)
	}
	h := rr.Header()
	if h.Class != mdns.ClassINET {
		return nil, fmt.Errorf("%w: class %s (only IN)", ErrBadValue, mdns.ClassToString[h.Class])
	}
	typ, ok := mdns.TypeToString[h.Rrtype]
	if !ok {
		return nil, fmt.Errorf("%w: type %d", ErrBadType, h.Rrtype)
	}
	// Going through the presentation form checks the data the same way as
	// records from the CLI, and gives a canonical copy.
	return ParseRecord(h.Name, typ, rdataString(rr), h.Ttl)
}
