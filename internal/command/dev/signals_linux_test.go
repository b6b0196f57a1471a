package dev

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestBrokenPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Close() }()
	if brokenPipe(w) {
		t.Error("a pipe with a reader is broken")
	}
	_ = r.Close()
	if !brokenPipe(w) {
		t.Error("a pipe whose reader closed is not broken")
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	if brokenPipe(f) {
		t.Error("a regular file is a broken pipe")
	}
}

// TestStopSignals: SIGPIPE stops kip dev only when its output has lost its
// reader (a client hanging up on a socket raises SIGPIPE too), and SIGHUP
// always does. Writes to the broken pipe fail instead of killing the test.
func TestStopSignals(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Close() }()

	ctx, stop := stopSignals(context.Background(), io.Discard, w)
	raise(t, syscall.SIGPIPE)
	select {
	case <-ctx.Done():
		t.Fatal("SIGPIPE stopped kip dev while its output still had a reader")
	case <-time.After(300 * time.Millisecond):
	}
	_ = r.Close()
	if _, err := w.Write([]byte("stopping\n")); err == nil {
		t.Fatal("a write to a pipe without a reader succeeded")
	}
	raise(t, syscall.SIGPIPE)
	waitDone(t, ctx, "SIGPIPE with a broken output")
	stop()

	ctx, stop = stopSignals(context.Background(), io.Discard)
	defer stop()
	raise(t, syscall.SIGHUP)
	waitDone(t, ctx, "SIGHUP")
}

func raise(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(os.Getpid(), sig); err != nil {
		t.Fatal(err)
	}
}

func waitDone(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not stop kip dev", what)
	}
}
