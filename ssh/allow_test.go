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
