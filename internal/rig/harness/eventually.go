package harness

import (
	"testing"
	"time"
)

// Eventually polls cond every 200 ms until it returns nil or timeout has
// passed, then fails the test with cond's last error. It waits for an
// outcome; it asserts no timing.
func Eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing after %s: %v", timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
