package proxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func upgradeRequest() *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/api/v1/namespaces/ns/pods/p/exec", nil)
	r.Header.Set("Connection", "Upgrade")
	r.Header.Set("Upgrade", "SPDY/3.1")
	return r
}

// TestEndWithCountsWhatItEnded: an end is counted when it ends a request
// still running, once, and not when the request was done first or another
// end came first.
func TestEndWithCountsWhatItEnded(t *testing.T) {
	t.Run("upgraded connection cut", func(t *testing.T) {
		var n atomic.Int32
		end, fire := context.WithCancel(context.Background())
		r, stop := EndWith(upgradeRequest(), end, func() { n.Add(1) })
		defer stop()
		fire()
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
			t.Fatal("the upgraded request's context did not end with its end")
		}
		if n.Load() != 1 {
			t.Errorf("counted %d ends, want 1", n.Load())
		}
	})
	t.Run("upgraded connection done first", func(t *testing.T) {
		var n atomic.Int32
		end, fire := context.WithCancel(context.Background())
		_, stop := EndWith(upgradeRequest(), end, func() { n.Add(1) })
		stop()
		fire()
		time.Sleep(10 * time.Millisecond)
		if n.Load() != 0 {
			t.Errorf("counted %d ends of a request already done", n.Load())
		}
	})
	t.Run("stream ended by the first of two ends", func(t *testing.T) {
		var first, second atomic.Int32
		end1, fire1 := context.WithCancel(context.Background())
		end2, fire2 := context.WithCancel(context.Background())
		r := httptest.NewRequest(http.MethodGet, "/api/v1/configmaps?watch=true", nil)
		r, _ = EndWith(r, end1, func() { first.Add(1) })
		r, _ = EndWith(r, end2, func() { second.Add(1) })
		upstream, feed := io.Pipe()
		body := newEndingBody(upstream, endsFrom(r.Context()))
		defer func() { _ = body.Close() }()
		go func() { _, _ = io.Copy(feed, strings.NewReader("an event\n")) }()
		buf := make([]byte, 64)
		if n, err := body.Read(buf); err != nil || n == 0 {
			t.Fatalf("read %d, %v", n, err)
		}
		fire2()
		if _, err := io.ReadAll(body); err != nil {
			t.Fatalf("the ended stream read as %v, want a finished one", err)
		}
		fire1()
		if first.Load() != 0 || second.Load() != 1 {
			t.Errorf("counted %d and %d ends, want 0 and 1", first.Load(), second.Load())
		}
	})
}
