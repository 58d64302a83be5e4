package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCallCLI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	adminDir, userDir, strangerDir := filepath.Join(dir, "admin"), filepath.Join(dir, "user"), filepath.Join(dir, "stranger")
	config := "[[peers]]\nid = \"admin\"\nfingerprints = [\"" + fingerprintOf(t, adminDir) + "\"]\nscopes = [\"call\", \"admin\"]\n" +
		"[[peers]]\nid = \"user\"\nfingerprints = [\"" + fingerprintOf(t, userDir) + "\"]\nscopes = [\"call\"]\n"
	n := startNode(t, filepath.Join(dir, "node"), config)
	nodeID := strings.SplitN(n.Addr, "@", 2)[0]

	t.Run("node/info", func(t *testing.T) {
		r := runCLI(t, nil, "--data", userDir, "call", n.Addr, "node/info")
		require.Equal(t, 0, r.code, r.stderr)
		assert.Contains(t, r.stdout, "{\n  \"id\": ", "pretty-printed")
		var info nodeInfo
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &info))
		assert.Equal(t, nodeID, info.ID)
		assert.Contains(t, info.ALPNs, call.ALPN)
		assert.Contains(t, info.ALPNs, core.PingALPN)
		assert.NotEmpty(t, info.Version)
		assert.GreaterOrEqual(t, info.UptimeSecs, 0.0)

		r = runCLI(t, nil, "--data", userDir, "call", "--json", n.Addr, "/node/info")
		require.Equal(t, 0, r.code, r.stderr)
		assert.Equal(t, 1, strings.Count(r.stdout, "\n"), "--json prints one line")
		assert.True(t, strings.HasPrefix(r.stdout, `{"id":"`+nodeID+`"`), r.stdout)
	})

	list := func(dataDir string) []string {
		r := runCLI(t, nil, "--data", dataDir, "call", "--json", n.Addr, "services/list")
		require.Equal(t, 0, r.code, r.stderr)
		var out call.ListOutput
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
		var names []string
		for _, o := range out.Operations {
			names = append(names, o.Name)
		}
		return names
	}
	t.Run("services/list follows the ACL", func(t *testing.T) {
		assert.Equal(t, []string{"msg/key", "node/info", "services/list", "services/schema"}, list(userDir))
		assert.Equal(t, []string{"msg/key", "node/info", "node/peers", "services/list", "services/schema"}, list(adminDir))
	})

	t.Run("node/peers needs admin", func(t *testing.T) {
		r := runCLI(t, nil, "--data", userDir, "call", n.Addr, "node/peers")
		assert.NotEqual(t, 0, r.code)
		assert.Equal(t, "alknet: FORBIDDEN: missing scope admin\n", r.stderr)
		assert.Empty(t, r.stdout)

		r = runCLI(t, nil, "--data", adminDir, "call", "--json", n.Addr, "node/peers")
		require.Equal(t, 0, r.code, r.stderr)
		var out peersOutput
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
		var ids []string
		for _, p := range out.Peers {
			ids = append(ids, p.ID)
			assert.Len(t, p.Fingerprints, 1)
		}
		assert.Equal(t, []string{"admin", "user"}, ids)
	})

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			args   []string
			stderr string
		}{
			{[]string{"call", n.Addr, "no/such"}, "alknet: NOT_FOUND: no operation /no/such\n"},
			{[]string{"call", n.Addr, "services/schema", `{"name":"node/peers"}`}, "alknet: NOT_FOUND: no operation node/peers\n"},
			{[]string{"call", n.Addr, "node/info", `{"extra":1}`}, "alknet: INVALID_INPUT: input does not match the schema of node/info"},
			{[]string{"call", n.Addr, "node/info", `{bad`}, "alknet: input is not valid JSON\n"},
			{[]string{"call", n.Addr, "noslash"}, "alknet: invalid operation name \"noslash\" (want ns/op)\n"},
			{[]string{"call", n.Addr, strings.Repeat("x", 5000)}, "alknet: invalid operation name \"" + strings.Repeat("x", 64) + "...\" (want ns/op)\n"},
		} {
			r := runCLI(t, nil, append([]string{"--data", userDir}, tc.args...)...)
			assert.Equal(t, 1, r.code, tc.args)
			assert.True(t, strings.HasPrefix(r.stderr, tc.stderr), "%v: %q", tc.args, r.stderr)
			assert.Empty(t, r.stdout)
		}
		r := runCLI(t, nil, "--data", strangerDir, "call", n.Addr, "node/info")
		assert.Equal(t, 1, r.code)
		assert.Contains(t, r.stderr, "authentication required")
	})

	t.Run("input over the frame limit from stdin", func(t *testing.T) {
		big := `{"name":"` + strings.Repeat("x", 2*call.DefaultMaxFrameSize) + `"}`
		r := runCLI(t, strings.NewReader(big), "--data", userDir, "call", n.Addr, "services/schema", "-")
		assert.Equal(t, 1, r.code)
		assert.Equal(t, "alknet: input is larger than a call frame (1048576 bytes at most)\n", r.stderr)
	})

	t.Run("input from stdin", func(t *testing.T) {
		r := runCLI(t, strings.NewReader(`{"name": "node/info"}`), "--data", userDir, "call", "--json", n.Addr, "services/schema", "-")
		require.Equal(t, 0, r.code, r.stderr)
		var spec call.Spec
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &spec))
		assert.Equal(t, "node/info", spec.Name)
		assert.Equal(t, call.KindQuery, spec.Kind)
	})
}

// TestCallCLISubscription drives a subscription from the binary: finite,
// then endless until SIGINT, which must stop the server-side handler.
func TestCallCLISubscription(t *testing.T) {
	t.Parallel()
	reg := call.NewRegistry(nil)
	call.Subscription(reg, "demo/count", func(ctx context.Context, in struct {
		N int `json:"n"`
	}, emit func(map[string]int) error) error {
		for i := range in.N {
			if err := emit(map[string]int{"i": i}); err != nil {
				return err
			}
		}
		return nil
	}, call.Options{})
	stopped := make(chan error, 1)
	call.Subscription(reg, "demo/forever", func(ctx context.Context, _ struct{}, emit func(int) error) error {
		for i := 0; ; i++ {
			if err := emit(i); err != nil {
				stopped <- ctx.Err()
				return err
			}
		}
	}, call.Options{})
	srv, err := call.NewServer(call.Config{Registry: reg})
	require.NoError(t, err)
	ep := coretest.StartEndpoint(t, core.Config{}, coretest.Route{Handler: srv})
	addr := ep.Addr().String()
	dataDir := t.TempDir()

	r := runCLI(t, nil, "--data", dataDir, "call", addr, "demo/count", `{"n":3}`)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "{\"i\":0}\n{\"i\":1}\n{\"i\":2}\n", r.stdout)

	cmd := exec.Command(alknetBin, "--data", dataDir, "call", addr, "demo/forever")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	sc := bufio.NewScanner(stdout)
	for i := range 50 {
		require.True(t, sc.Scan(), "line %d", i)
		require.Equal(t, jsonNum(i), sc.Text())
	}
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	go func() {
		for sc.Scan() {
		}
	}()
	require.NoError(t, cmd.Wait(), "interrupt ends the subscription cleanly")
	assert.ErrorIs(t, <-stopped, context.Canceled, "the server-side handler stopped")
}

func jsonNum(i int) string { b, _ := json.Marshal(i); return string(b) }
