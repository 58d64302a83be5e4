package vault

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// printAll renders x every way a careless caller might.
func printAll(t *testing.T, x any) []string {
	t.Helper()
	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3v"} {
		out = append(out, fmt.Sprintf(verb, x))
	}
	out = append(out, fmt.Sprint(x), fmt.Sprintln(x))
	if s, ok := x.(fmt.Stringer); ok {
		out = append(out, s.String())
	}
	if g, ok := x.(fmt.GoStringer); ok {
		out = append(out, g.GoString())
	}
	j, err := json.Marshal(map[string]any{"k": x})
	require.NoError(t, err)
	out = append(out, string(j))
	for _, h := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var buf bytes.Buffer
		slog.New(h(&buf)).Info("msg", "key", x, slog.Any("any", x), slog.Group("g", "k", x))
		out = append(out, buf.String())
	}
	return out
}

func TestRedaction(t *testing.T) {
	seed, err := Seed(testMnemonic, "")
	require.NoError(t, err)
	ext, err := DeriveExtendedKey(seed, NodeIdentityPath())
	require.NoError(t, err)
	priv := ext.PrivateKey()
	secretHex := hex.EncodeToString(ext.Key())
	chainHex := hex.EncodeToString(ext.ChainCode())
	v, _ := createTestVault(t, Config{})

	for name, x := range map[string]any{
		"PrivateKey":       priv,
		"*ExtendedKey":     ext,
		"ExtendedKey":      *ext,
		"struct with keys": struct{ K PrivateKey }{priv},
	} {
		for _, s := range printAll(t, x) {
			assert.Contains(t, s, "[REDACTED]", "%s: %s", name, s)
			lower := strings.ToLower(s)
			assert.NotContains(t, lower, secretHex[:16], "%s leaks the key: %s", name, s)
			assert.NotContains(t, lower, chainHex[:16], "%s leaks the chain code: %s", name, s)
			assert.NotContains(t, s, string(priv[:8]), name)
		}
	}
	text, err := priv.MarshalText()
	require.NoError(t, err)
	assert.Equal(t, "[REDACTED]", string(text))

	for _, s := range printAll(t, v) {
		assert.Contains(t, s, "unlocked", s)
		assert.NotContains(t, s, "legal", s)
		assert.NotContains(t, strings.ToLower(s), secretHex[:16], s)
	}
}
