package recording

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"
)

// collector is a Sink that keeps what it is given, for tests.
type collector struct {
	mu        sync.Mutex
	events    []Event
	malformed []error
	after     int // events received after Malformed
}

func (c *collector) Event(e Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(e.Data) == 0 {
		panic("empty event")
	}
	if len(c.malformed) > 0 {
		c.after++
	}
	e.Data = bytes.Clone(e.Data)
	c.events = append(c.events, e)
}

func (c *collector) Malformed(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.malformed = append(c.malformed, err)
}

// streams renders what each stream carried, e.g. "stdin=ab stdout=cd".
func (c *collector) streams() string {
	got := map[Stream]*strings.Builder{}
	for _, e := range c.events {
		if got[e.Stream] == nil {
			got[e.Stream] = &strings.Builder{}
		}
		got[e.Stream].Write(e.Data)
	}
	var parts []string
	for _, s := range []Stream{StreamStdin, StreamStdout, StreamStderr, StreamError, StreamResize} {
		if got[s] != nil {
			parts = append(parts, fmt.Sprintf("%s=%s", s, got[s]))
		}
	}
	return strings.Join(parts, " ")
}

// fixedClock returns times one millisecond apart from a fixed start.
func fixedClock(start time.Time) func() time.Time {
	var mu sync.Mutex
	t := start
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Millisecond)
		return t
	}
}

// feedChunks feeds b to f in pieces of n bytes (all of it when n <= 0).
func feedChunks(f func([]byte), b []byte, n int) {
	if n <= 0 {
		n = len(b) + 1
	}
	for len(b) > 0 {
		k := min(n, len(b))
		f(b[:k])
		b = b[k:]
	}
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
