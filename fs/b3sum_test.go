package fs

import (
	"bufio"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// needB3sum skips without Debian's b3sum, or fails when
// ALKNET_REQUIRE_CLIENTS=1 (CI installs it).
func needB3sum(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("b3sum"); err != nil {
		msg := "b3sum not found; install it (Debian/Ubuntu: apt-get install b3sum)"
		if os.Getenv("ALKNET_REQUIRE_CLIENTS") == "1" {
			t.Fatal(msg + "; ALKNET_REQUIRE_CLIENTS=1 makes a missing client an error")
		}
		t.Skip(msg)
	}
}

func b3sum(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("b3sum", "--no-names", path).Output()
	require.NoError(t, err)
	return strings.TrimSpace(string(out))
}

// The store names blobs exactly as b3sum does.
func TestHashEqualsB3sum(t *testing.T) {
	needB3sum(t)
	st := newStore(t)
	dir := t.TempDir()
	for _, n := range []int{0, 1, 1023, 1024, 1025, GroupSize - 1, GroupSize, GroupSize + 1} {
		p := filepath.Join(dir, "f")
		require.NoError(t, os.WriteFile(p, testData(n, uint64(n)+1000), 0o644))
		info, err := st.ImportFile(t.Context(), p, PutOptions{})
		require.NoError(t, err)
		assert.Equal(t, b3sum(t, p), info.Hash.String(), "size %d", n)
	}
}

// One GiB through the store's hashing (the outboard encoder) against
// b3sum. Skipped with -short.
func TestHashEqualsB3sum1GiB(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the 1 GiB hash")
	}
	needB3sum(t)
	const size = 1 << 30
	p := filepath.Join(t.TempDir(), "big")
	f, err := os.Create(p)
	require.NoError(t, err)
	w := bufio.NewWriterSize(f, 4<<20)
	_, err = io.CopyN(w, rand.NewChaCha8([32]byte{'b', '3'}), size)
	require.NoError(t, err)
	require.NoError(t, w.Flush())
	_, err = f.Seek(0, io.SeekStart)
	require.NoError(t, err)
	ob := make(memWriterAt, OutboardSize(size))
	h, err := encodeOutboard(bufio.NewReaderSize(f, 4<<20), size, io.Discard, ob)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	assert.Equal(t, b3sum(t, p), h.String())
}
