//go:build unix

package cache

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestKeysDoesNotOpenAFIFO: a FIFO named like an entry would block a
// reader that opened it; Keys never does.
func TestKeysDoesNotOpenAFIFO(t *testing.T) {
	s := New(t.TempDir())
	if err := s.ensureDir(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(s.Dir(), Key{Kind: "static"}.fileName()+".json"), 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.Keys()
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Keys blocked on a FIFO")
	}
}
