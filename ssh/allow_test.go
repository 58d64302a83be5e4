package ssh_test

import (
	"net/netip"
	"testing"

	alkssh "github.com/alkdev/alknet/ssh"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseRule(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"10.0.0.0/8", "10.0.0.0/8"},
		{"10.1.2.3/8:22", "10.0.0.0/8:22"},
		{"!192.168.1.1:1000-2000", "!192.168.1.1:1000-2000"},
		{"*.Example.COM:443", "*.example.com:443"},
		{"[fd00::/8]:22", "[fd00::/8]:22"},
		{"::1", "[::1]:*"},
		{"[::1]:*", "[::1]:*"},
		{"db?.internal:*", "db?.internal"},
		{"*", "*"},
	} {
		r, err := alkssh.ParseRule(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, r.String(), tc.in)
		again, err := alkssh.ParseRule(r.String())
		require.NoError(t, err)
		assert.Equal(t, r, again, "String round-trips")
	}
	for _, bad := range []string{"", "!", "host:0", "host:70000", "host:20-10", "10.0.0.0/33", "[::1", "[::1]x", "a[:1", "host:x"} {
		_, err := alkssh.ParseRule(bad)
		assert.ErrorIs(t, err, alkssh.ErrInvalidRule, "%q", bad)
	}
}

func TestAllowed(t *testing.T) {
	rules, err := alkssh.ParseRules([]string{"!10.0.0.1", "10.0.0.0/8:22", "*.corp.example:443", "!*.bad.example", "*.example:80-90"})
	require.NoError(t, err)
	ip := netip.MustParseAddr
	for _, tc := range []struct {
		name string
		ip   string
		port uint16
		want bool
	}{
		{"10.0.0.1", "10.0.0.1", 22, false}, // first rule denies
		{"10.0.0.2", "10.0.0.2", 22, true},
		{"10.0.0.2", "10.0.0.2", 23, false}, // no match: default deny
		{"git.corp.example", "192.0.2.1", 443, true},
		{"git.corp.example", "192.0.2.1", 8443, false},
		{"x.bad.example", "192.0.2.1", 85, false},
		{"ok.example", "192.0.2.1", 85, true},
		{"OK.Example.", "192.0.2.1", 85, true},
		{"ok.example", "10.0.0.1", 85, false}, // in order: the deny of 10.0.0.1 comes before the name rule
	} {
		got := alkssh.Allowed(rules, tc.name, ip(tc.ip), tc.port)
		assert.Equal(t, tc.want, got, "%s %s:%d", tc.name, tc.ip, tc.port)
	}
	assert.True(t, alkssh.Allowed(nil, "anything", ip("10.0.0.1"), 1), "no rules: allow")
}

// TestAllowedDenyListBypass: a deny-list ("everything but the local host
// and the private network") must hold against every spelling of the local
// host, and a name glob must not admit an address that an address rule
// denies.
func TestAllowedDenyListBypass(t *testing.T) {
	rules, err := alkssh.ParseRules([]string{"!127.0.0.0/8", "!::1", "!10.0.0.0/8", "!fe80::/10", "*"})
	require.NoError(t, err)
	ip := netip.MustParseAddr
	for _, tc := range []struct {
		name, ip string
		want     bool
	}{
		{"192.0.2.1", "192.0.2.1", true},
		{"2001:db8::1", "2001:db8::1", true},
		{"127.0.0.1", "127.0.0.1", false},
		{"0.0.0.0", "0.0.0.0", false},                   // connects to the local host
		{"::", "::", false},                             // likewise
		{"0.1.2.3", "0.1.2.3", false},                   // "this network", never a destination
		{"::ffff:127.0.0.1", "::ffff:127.0.0.1", false}, // mapped loopback
		{"::ffff:0.0.0.0", "::ffff:0.0.0.0", false},
		{"::ffff:10.1.2.3", "::ffff:10.1.2.3", false},
		{"::1%lo", "::1%lo", false},                     // a zone skipped every CIDR rule
		{"fe80::1%lo", "fe80::1%lo", false},             // likewise
		{"2001:db8::1%eth0", "2001:db8::1%eth0", false}, // no rule can name a zone
		{"evil.example", "127.0.0.1", false},            // the glob "*" cannot admit a denied address
		{"evil.example", "0.0.0.0", false},
		{"evil.example", "::ffff:10.0.0.1", false},
		{"good.example", "192.0.2.7", true},
	} {
		assert.Equal(t, tc.want, alkssh.Allowed(rules, tc.name, ip(tc.ip), 80), "%s -> %s", tc.name, tc.ip)
	}

	// An allow-list: the unspecified address is loopback, so a loopback
	// allow admits it and nothing else.
	lo, err := alkssh.ParseRules([]string{"127.0.0.1:80"})
	require.NoError(t, err)
	assert.True(t, alkssh.Allowed(lo, "0.0.0.0", ip("0.0.0.0"), 80))
	assert.False(t, alkssh.Allowed(lo, "127.0.0.1%lo", ip("::1%lo"), 80))

	// An explicit address allow before a broader deny still wins.
	order, err := alkssh.ParseRules([]string{"10.0.0.5:22", "!10.0.0.0/8", "*"})
	require.NoError(t, err)
	assert.True(t, alkssh.Allowed(order, "db.internal", ip("10.0.0.5"), 22))
	assert.False(t, alkssh.Allowed(order, "db.internal", ip("10.0.0.6"), 22))
}

func TestCanonicalDest(t *testing.T) {
	ip := netip.MustParseAddr
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"0.0.0.0", "127.0.0.1", true},
		{"::", "::1", true},
		{"::ffff:0.0.0.0", "127.0.0.1", true},
		{"::ffff:192.0.2.1", "192.0.2.1", true},
		{"192.0.2.1", "192.0.2.1", true},
		{"0.0.0.1", "", false},
		{"::1%lo", "", false},
		{"fe80::1%2", "", false},
	} {
		got, ok := alkssh.CanonicalDest(ip(tc.in))
		assert.Equal(t, tc.ok, ok, tc.in)
		if tc.ok {
			assert.Equal(t, tc.want, got.String(), tc.in)
		}
	}
}
