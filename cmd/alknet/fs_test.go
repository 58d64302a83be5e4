package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alkdev/alknet/core/store"
	"github.com/alkdev/alknet/fs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fsEnv is a node serving alknet/fs and two client data directories: rw
// (scopes fs, fs:write) and ro (scope fs).
type fsEnv struct {
	node   *node
	rw, ro string
}

func newFSEnv(t *testing.T) *fsEnv {
	t.Helper()
	base := t.TempDir()
	e := &fsEnv{rw: filepath.Join(base, "rw"), ro: filepath.Join(base, "ro")}
	cfg := `[[peers]]
id = "rw"
fingerprints = ["` + fingerprintOf(t, e.rw) + `"]
scopes = ["fs", "fs:write"]
[[peers]]
id = "ro"
fingerprints = ["` + fingerprintOf(t, e.ro) + `"]
scopes = ["fs"]
`
	e.node = startNode(t, filepath.Join(base, "srv"), cfg)
	return e
}

// TestFSPutGetTicket: put prints the hash (equal to b3sum) and a ticket;
// get with the ticket writes the same bytes; a peer without fs:write is
// refused with the reason.
func TestFSPutGetTicket(t *testing.T) {
	t.Parallel()
	e := newFSEnv(t)
	src := filepath.Join(t.TempDir(), "data.bin")
	randomFile(t, src, 3<<20+5)
	r := runCLI(t, nil, "--data", e.rw, "fs", "put", "-q", src, e.node.Addr)
	require.Equal(t, 0, r.code, r.stderr)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 2, r.stdout)
	want, _, err := fs.HashReader(mustOpen(t, src))
	require.NoError(t, err)
	assert.Equal(t, want.String(), lines[0])
	if _, err := exec.LookPath("b3sum"); err == nil || os.Getenv("ALKNET_REQUIRE_CLIENTS") == "1" {
		needClient(t, "b3sum", "b3sum")
		out, err := exec.Command("b3sum", "--no-names", src).Output()
		require.NoError(t, err)
		assert.Equal(t, strings.TrimSpace(string(out)), lines[0], "equal to b3sum")
	}
	tk, err := fs.ParseTicket(lines[1])
	require.NoError(t, err)
	assert.Equal(t, want, tk.Hash)
	assert.False(t, tk.Collection)

	dst := filepath.Join(t.TempDir(), "got.bin")
	r = runCLI(t, nil, "--data", e.ro, "fs", "get", "--json", lines[1], "-o", dst)
	require.Equal(t, 0, r.code, r.stderr)
	var res struct {
		Hash     string `json:"hash"`
		Size     int64  `json:"size"`
		Received int64  `json:"received"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &res))
	assert.Equal(t, want.String(), res.Hash)
	assert.Equal(t, int64(3<<20+5), res.Received)
	assert.Equal(t, sha(t, src), sha(t, dst))

	r = runCLI(t, nil, "--data", e.ro, "fs", "put", src, e.node.Addr)
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "writing needs scope fs:write")

	r = runCLI(t, nil, "--data", e.ro, "fs", "ls", e.node.Addr)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "tag data.bin  "+want.String())
}

// TestFSGetResume: SIGINT stops a get with status 130 and a hint; the same
// command again transfers only what was missing.
func TestFSGetResume(t *testing.T) {
	t.Parallel()
	e := newFSEnv(t)
	src := filepath.Join(t.TempDir(), "big.bin")
	const size = 128 << 20
	randomFile(t, src, size)
	r := runCLI(t, nil, "--data", e.rw, "fs", "put", "-q", src, e.node.Addr)
	require.Equal(t, 0, r.code, r.stderr)
	ticket := strings.Split(strings.TrimSpace(r.stdout), "\n")[1]
	dst := filepath.Join(t.TempDir(), "big.bin")

	bg := startCp(t, "--data", e.ro, "fs", "get", ticket, "-o", dst)
	waitPartial(t, bg, e.ro)
	bg.signal(t, syscall.SIGSTOP)
	bg.signal(t, syscall.SIGINT)
	bg.signal(t, syscall.SIGCONT)
	require.Equal(t, 130, bg.wait(t), bg.stderr.String())
	assert.Contains(t, bg.stderr.String(), "run the same command again to resume")
	assert.NoFileExists(t, dst)

	r = runCLI(t, nil, "--data", e.ro, "fs", "get", "--json", ticket, "-o", dst)
	require.Equal(t, 0, r.code, r.stderr)
	var res struct{ Resumed, Received, Wire int64 }
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &res))
	assert.Positive(t, res.Resumed, "something was kept from the first run")
	assert.Equal(t, int64(size)-res.Resumed, res.Received, "only the rest was transferred")
	assert.Less(t, res.Wire, int64(size)-res.Resumed+int64(size)/128, "wire bytes: the rest plus tree nodes")
	assert.Equal(t, sha(t, src), sha(t, dst))
}

// waitPartial waits until the get running in bg has recorded verified
// bytes of a partial download in dataDir.
func waitPartial(t *testing.T, bg *bgCLI, dataDir string) {
	t.Helper()
	db, err := store.Open(filepath.Join(dataDir, "alknet.db"))
	require.NoError(t, err)
	defer db.Close()
	st, err := fs.OpenStore(t.Context(), fs.StoreConfig{Dir: filepath.Join(dataDir, "blobs"), DB: db})
	require.NoError(t, err)
	defer st.Close()
	deadline := time.After(time.Minute)
	for {
		parts, err := st.Partials(t.Context())
		require.NoError(t, err)
		if len(parts) == 1 && parts[0].Present > 0 {
			return
		}
		select {
		case <-bg.done:
			t.Fatalf("get exited (%d) before recording progress: %s", bg.code, bg.stderr.String())
		case <-deadline:
			t.Fatalf("no partial download recorded: %s", bg.stderr.String())
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// TestFSServeDir: serve-dir shares a directory as a collection with a
// ticket; get rebuilds it with the permission bits; symlinks are skipped.
func TestFSServeDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "sub"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.txt"), []byte("alpha"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "sub", "run.sh"), []byte("#!/bin/sh\n"), 0o755))
	require.NoError(t, os.Symlink("a.txt", filepath.Join(dir, "link")))
	data := filepath.Join(t.TempDir(), "sharer")
	stdout := &syncBuffer{}
	bg := &bgCLI{cmd: exec.Command(alknetBin, "--data", data, "fs", "serve-dir", "-q", "--public", "--listen", "127.0.0.1:0", dir),
		stderr: &syncBuffer{}, done: make(chan struct{})}
	bg.cmd.Stdout, bg.cmd.Stderr = stdout, bg.stderr
	require.NoError(t, bg.cmd.Start())
	go func() {
		defer close(bg.done)
		if err := bg.cmd.Wait(); err != nil {
			bg.code = -1
			if ee, ok := err.(*exec.ExitError); ok {
				bg.code = ee.ExitCode()
			}
		}
	}()
	t.Cleanup(func() {
		_ = bg.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-bg.done:
		case <-time.After(30 * time.Second):
			_ = bg.cmd.Process.Kill()
			<-bg.done
		}
	})
	ticket := waitTicket(t, bg, stdout)
	out := filepath.Join(t.TempDir(), "copy")
	getter := filepath.Join(t.TempDir(), "getter")
	r := runCLI(t, nil, "--data", getter, "fs", "get", "-q", ticket, "-o", out)
	require.Equal(t, 0, r.code, r.stderr)
	r = runCLI(t, nil, "--data", getter, "fs", "ls", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, `"blobs": []`, "written out, the blobs left the getter's store")
	b, err := os.ReadFile(filepath.Join(out, "a.txt"))
	require.NoError(t, err)
	assert.Equal(t, "alpha", string(b))
	fi, err := os.Stat(filepath.Join(out, "sub", "run.sh"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o755), fi.Mode().Perm())
	_, err = os.Lstat(filepath.Join(out, "link"))
	assert.True(t, os.IsNotExist(err), "symlinks are not shared")
	assert.Contains(t, bg.stderr.String(), "skipped link")
}

// waitTicket waits for serve-dir to announce its collection and returns
// the ticket it printed.
func waitTicket(t *testing.T, bg *bgCLI, stdout *syncBuffer) string {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		if s := stdout.String(); strings.HasSuffix(s, "\n") {
			return strings.TrimSpace(s)
		}
		select {
		case <-bg.done:
			t.Fatalf("serve-dir exited (%d): %s", bg.code, bg.stderr.String())
		case <-deadline:
			t.Fatalf("serve-dir printed no ticket: %s", bg.stderr.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func mustOpen(t *testing.T, p string) *os.File {
	t.Helper()
	f, err := os.Open(p)
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.Close() })
	return f
}
