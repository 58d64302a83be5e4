package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestVersionFrom(t *testing.T) {
	t.Parallel()
	installed := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/alkdev/alknet/cmd/alknet", Version: "v0.4.2"}}
	checkout := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef"}, {Key: "vcs.modified", Value: "true"},
	}}
	clean := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.5.0"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "fedcba"}, {Key: "vcs.modified", Value: "false"},
	}}
	for _, tc := range []struct {
		name            string
		ldVer, ldCommit string
		bi              *debug.BuildInfo
		want            versionInfo
		line            string
	}{
		{"go install at a version", "", "", installed, versionInfo{Version: "v0.4.2", Go: "go1.26.8"}, "alknet v0.4.2 (go1.26.8)"},
		{"checkout with changes", "", "", checkout, versionInfo{Version: "(devel)", Commit: "0123456789abcdef-dirty", Go: "go1.26.8"}, "alknet (devel) (commit 0123456789abcdef-dirty, go1.26.8)"},
		{"clean checkout at a tag", "", "", clean, versionInfo{Version: "v0.5.0", Commit: "fedcba", Go: "go1.26.8"}, "alknet v0.5.0 (commit fedcba, go1.26.8)"},
		{"link-time values win", "v1.0.0", "abc", installed, versionInfo{Version: "v1.0.0", Commit: "abc", Go: "go1.26.8"}, "alknet v1.0.0 (commit abc, go1.26.8)"},
		{"no build information", "", "", nil, versionInfo{Version: "(devel)", Go: runtime.Version()}, "alknet (devel) (" + runtime.Version() + ")"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := versionFrom(tc.ldVer, tc.ldCommit, tc.bi)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.line, got.String())
		})
	}
}

// TestVersionCommand builds the binary with a link-time version and checks
// that `version`, `--version`, `version --json` and node/info agree.
func TestVersionCommand(t *testing.T) {
	// Not parallel: it points alknetBin at a binary of its own.
	bin := filepath.Join(t.TempDir(), "alknet")
	build := exec.Command("go", "build", "-race", "-ldflags", "-X main.version=v0.7.1 -X main.commit=c0ffee", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	saved := alknetBin
	alknetBin = bin
	t.Cleanup(func() { alknetBin = saved })

	want := "alknet v0.7.1 (commit c0ffee, " + runtime.Version() + ")\n"
	r := runCLI(t, nil, "version")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, want, r.stdout)
	r = runCLI(t, nil, "--version")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, want, r.stdout, "--version prints the same line")

	r = runCLI(t, nil, "version", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var v versionInfo
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &v))
	assert.Equal(t, versionInfo{Version: "v0.7.1", Commit: "c0ffee", Go: runtime.Version()}, v)

	r = runCLI(t, nil, "version", "extra")
	assert.NotEqual(t, 0, r.code)
	assert.Empty(t, r.stdout)

	dir := t.TempDir()
	userDir := filepath.Join(dir, "user")
	config := "[[peers]]\nid = \"user\"\nfingerprints = [\"" + fingerprintOf(t, userDir) + "\"]\nscopes = [\"call\"]\n"
	n := startNode(t, filepath.Join(dir, "node"), config)
	r = runCLI(t, nil, "--data", userDir, "call", "--json", n.Addr, "node/info")
	require.Equal(t, 0, r.code, r.stderr)
	var info nodeInfo
	require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &info))
	assert.Equal(t, "v0.7.1", info.Version, "node/info reports the version `alknet version` prints")
}
