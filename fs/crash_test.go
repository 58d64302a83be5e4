package fs

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const crashEnv = "ALKNET_FS_CRASH_CHILD"

// TestCrashChild is the process TestKillDuringPut kills: it puts 16 MiB
// from stdin into the store of the directory named by crashEnv and says
// "half" on stdout once 4 MiB are in.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("helper process of TestKillDuringPut")
	}
	st := openStoreAt(t, dir)
	said := false
	_, err := st.Put(t.Context(), bufio.NewReader(os.Stdin), 16<<20, PutOptions{Tag: "t", Progress: func(n int64) {
		if n >= 4<<20 && !said {
			said = true
			fmt.Println("half")
		}
	}})
	t.Fatalf("the put was meant to be killed, it returned %v", err)
}

func readFileString(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// A put killed with SIGKILL halfway leaves no visible blob, no index row
// and no tag; the next put of the same data succeeds, and gc clears the
// dead put's temporary files.
func TestKillDuringPut(t *testing.T) {
	dir := t.TempDir()
	data := testData(16<<20, 77)
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+dir)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderr, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	require.NoError(t, err)
	cmd.Stderr = stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	go func() { _, _ = stdin.Write(data[:8<<20]) }() // then hold: the put waits for more
	said := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "half" {
				said <- "half"
				return
			}
		}
		close(said)
	}()
	select {
	case s, ok := <-said:
		require.True(t, ok, "child ended without reaching half: %s", readFileString(stderr.Name()))
		require.Equal(t, "half", s)
	case <-time.After(time.Minute):
		t.Fatalf("child never reached half: %s", readFileString(stderr.Name()))
	}
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()

	st := openStoreAt(t, dir)
	h := HashBytes(data)
	assert.False(t, st.Has(h), "no visible blob")
	blobs, err := st.Blobs(t.Context())
	require.NoError(t, err)
	assert.Empty(t, blobs, "no index row")
	tags, err := st.Tags(t.Context())
	require.NoError(t, err)
	assert.Empty(t, tags, "no tag")
	tmp, err := os.ReadDir(filepath.Join(dir, "blobs", "tmp"))
	require.NoError(t, err)
	require.NotEmpty(t, tmp, "the dead put's temporary file is still there (this test must see the crash mid-put)")

	info := putBytes(t, st, data, PutOptions{Tag: "t"})
	assert.Equal(t, h, info.Hash)
	eqBytes(t, data, readFile(t, st.blobPath(h)))
	res, err := st.GC(t.Context(), GCOptions{Grace: -1})
	require.NoError(t, err)
	assert.Equal(t, len(tmp), res.Orphans)
	assert.True(t, st.Has(h))
}
