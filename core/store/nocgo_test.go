package store_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A build without cgo (no C compiler, or CGO_ENABLED=0) fails at compile
// time with one line naming the cause, instead of building a binary whose
// database calls fail at run time.
func TestBuildWithoutCgoFailsClearly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the package with the go command")
	}
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", os.DevNull, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.Error(t, err, "a build without cgo must fail: %s", out)
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	require.Len(t, lines, 1, "one error line: %s", out)
	assert.Contains(t, lines[0], "SQLite_needs_cgo__install_a_C_compiler_such_as_gcc_and_build_with_CGO_ENABLED_1")
}
