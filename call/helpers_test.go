package call

import (
	"testing"
	"time"
)

// waitLimit bounds every wait in these tests: a regression fails, it does
// not hang.
const waitLimit = 10 * time.Second

// within receives from ch or fails the test after waitLimit.
func within[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		t.Fatalf("timed out after %s waiting for %s", waitLimit, what)
		panic("unreachable")
	}
}
