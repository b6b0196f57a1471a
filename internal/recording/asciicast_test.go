package recording

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

var start = time.Date(2026, 3, 1, 14, 2, 0, 0, time.UTC)

func testKey(t testing.TB) ed25519.PrivateKey {
	seed := bytes.Repeat([]byte{7}, ed25519.SeedSize)
	return ed25519.NewKeyFromSeed(seed)
}

func testHeader(tty bool) Header {
	return Header{
		Identity: Identity{
			SessionID: "3f0c", User: "alice@example.com", UID: "u-1", Groups: []string{"sre", "system:authenticated"},
			Cluster: "prod-eu", Namespace: "payments", Pod: "api-7f9", Container: "app", Subresource: "exec",
			Command: []string{"sh", "-c", "echo hi"}, Replica: "kip-0", AuditID: "a1b2",
		},
		TTY: tty, Width: 0, Height: 0, Start: start,
	}
}

// at is an event at ms milliseconds after start.
func at(ms int, s Stream, data string) Event {
	return Event{Time: start.Add(time.Duration(ms) * time.Millisecond), Stream: s, Data: []byte(data)}
}

// castLines decodes a recording's event lines (header and seal excluded)
// as "t code data".
func castLines(t *testing.T, b []byte) []string {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	var out []string
	for i := 0; sc.Scan(); i++ {
		if i == 0 {
			continue
		}
		var ev []any
		d := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		d.UseNumber()
		if err := d.Decode(&ev); err != nil || len(ev) != 3 {
			t.Fatalf("line %d is not an event: %q", i, sc.Text())
		}
		if ev[1] == codeSeal {
			continue
		}
		out = append(out, strings.Join([]string{ev[0].(json.Number).String(), ev[1].(string), ev[2].(string)}, " "))
	}
	return out
}

func record(t *testing.T, h Header, events ...Event) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := NewWriter(&out, h, testKey(t))
	if err != nil {
		t.Fatal(err)
	}
	w.now = func() time.Time { return start.Add(10 * time.Second) }
	for _, e := range events {
		w.Event(e)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestWriterHeader(t *testing.T) {
	b := record(t, testHeader(false))
	first, _, _ := bytes.Cut(b, []byte("\n"))
	var h map[string]any
	if err := json.Unmarshal(first, &h); err != nil {
		t.Fatal(err)
	}
	kip := h["kip"].(map[string]any)
	checks := map[string]any{
		"version": 2.0, "width": 80.0, "height": 24.0, "timestamp": float64(start.Unix()),
		"command": "sh -c echo hi", "title": "alice@example.com payments/api-7f9/app exec",
	}
	for k, v := range checks {
		if h[k] != v {
			t.Errorf("header %s = %v, want %v", k, h[k], v)
		}
	}
	for k, v := range map[string]any{"user": "alice@example.com", "uid": "u-1", "cluster": "prod-eu",
		"namespace": "payments", "pod": "api-7f9", "container": "app", "replica": "kip-0",
		"auditID": "a1b2", "sessionID": "3f0c", "tty": false, "start": "2026-03-01T14:02:00Z"} {
		if kip[k] != v {
			t.Errorf("header kip.%s = %v, want %v", k, kip[k], v)
		}
	}
	if codes := kip["codes"].(map[string]any); codes["e"] != "stderr" || codes["o"] != "stdout" {
		t.Errorf("codes of a non-TTY session: %v", codes)
	}
}

func TestWriterEvents(t *testing.T) {
	euro := "€" // three bytes: e2 82 ac
	tests := []struct {
		name   string
		tty    bool
		events []Event
		want   []string
	}{{
		name:   "TTY merges stderr into output",
		tty:    true,
		events: []Event{at(1, StreamStdin, "ls\r"), at(2, StreamStdout, "a\r\n"), at(3, StreamStderr, "b")},
		want:   []string{"0.001 i ls\r", "0.002 o a\r\n", "0.003 o b"},
	}, {
		name:   "non-TTY keeps stderr apart",
		events: []Event{at(1, StreamStdout, "out"), at(2, StreamStderr, "err")},
		want:   []string{"0.001 o out", "0.002 e err"},
	}, {
		name:   "exit status",
		events: []Event{at(5, StreamError, `{"status":"Failure","reason":"NonZeroExitCode"}`)},
		want:   []string{`0.005 x {"status":"Failure","reason":"NonZeroExitCode"}`},
	}, {
		name: "resize, whole and split across pieces, several in one piece",
		events: []Event{at(1, StreamResize, `{"Width":120,"Height":40}`), at(2, StreamResize, `{"Wid`),
			at(3, StreamResize, "th\":80,\"Height\":24}\n{\"Width\":1,\"Height\":2}\n")},
		want: []string{"0.001 r 120x40", "0.003 r 80x24", "0.003 r 1x2"},
	}, {
		name:   "unreadable and oversized resize messages become notes",
		events: []Event{at(1, StreamResize, `{"Width":"x"}`), at(2, StreamResize, strings.Repeat(" ", 300)), at(3, StreamResize, `{"Width":2,"Height":3}`)},
		want:   []string{"0.001 m kip: unreadable resize message", "0.002 m kip: resize message too long", "0.003 r 2x3"},
	}, {
		name:   "a character split across pieces is written whole",
		events: []Event{at(1, StreamStdout, "a"+euro[:1]), at(2, StreamStdout, euro[1:2]), at(3, StreamStdout, euro[2:]+"b")},
		want:   []string{"0.001 o a", "0.003 o " + euro + "b"},
	}, {
		name:   "split characters of two streams do not mix",
		events: []Event{at(1, StreamStdout, euro[:2]), at(2, StreamStdin, euro[:1]), at(3, StreamStdout, euro[2:]), at(4, StreamStdin, euro[1:])},
		want:   []string{"0.003 o " + euro, "0.004 i " + euro},
	}, {
		name:   "bytes that are not UTF-8 become U+FFFD",
		events: []Event{at(1, StreamStdout, "a\xffb\xc3(")},
		want:   []string{"0.001 o a\ufffdb\ufffd("},
	}, {
		name:   "an incomplete character at the end is written at close",
		events: []Event{at(1, StreamStdout, "z"+euro[:2])},
		want:   []string{"0.001 o z", "10 o \ufffd\ufffd"},
	}, {
		name:   "control characters and quotes survive",
		events: []Event{at(1, StreamStdout, "\x1b[1m\"q\"\\\x00\x7f\t")},
		want:   []string{"0.001 o \x1b[1m\"q\"\\\x00\x7f\t"},
	}, {
		name:   "time never goes back",
		events: []Event{at(5, StreamStdout, "a"), at(3, StreamStdin, "b"), at(-9, StreamStdin, "c")},
		want:   []string{"0.005 o a", "0.005 i b", "0.005 i c"},
	}}
	for _, tt := range tests {
		got := castLines(t, record(t, testHeader(tt.tty), tt.events...))
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
	}
}

func TestWriterLargeEventKeepsMemoryBounded(t *testing.T) {
	// Worst case for escaping: every byte becomes \u00XX.
	big := strings.Repeat("\x01€", 100000)
	var out bytes.Buffer
	w, _ := NewWriter(&out, testHeader(false), testKey(t))
	w.Event(at(1, StreamStdout, big))
	if cap(w.buf) > largeBufferSize {
		t.Fatalf("buffer grew to %d bytes", cap(w.buf))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	lines := castLines(t, out.Bytes())
	if len(lines) != 1 || lines[0] != "0.001 o "+big {
		t.Fatalf("large event not written exactly (%d lines)", len(lines))
	}
	if err := Verify(bytes.NewReader(out.Bytes()), testKey(t).Public()); err != nil {
		t.Fatal(err)
	}
}

// syncBuffer is a bytes.Buffer the flush timer may write to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestWriterFlushesWithinInterval(t *testing.T) {
	var out syncBuffer
	w, _ := NewWriter(&out, testHeader(true), testKey(t))
	w.every = 20 * time.Millisecond
	w.Event(at(1, StreamStdout, "typed a second ago"))
	if strings.Contains(out.String(), "typed") {
		t.Fatal("written before the flush (test assumes buffering)")
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "typed") {
		if time.Now().After(deadline) {
			t.Fatal("event not written by the flush timer")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A recording cut here (kip killed) has no seal but every line before
	// the cut is whole.
	if err := Verify(strings.NewReader(out.String()), testKey(t).Public()); !errors.Is(err, ErrUnsealed) {
		t.Fatalf("Verify of a cut recording: %v", err)
	}
	_ = w.Close()
}

type failingWriter struct{ n int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errors.New("no space left on device")
	}
	f.n--
	return len(p), nil
}

func TestWriterWriteErrorDropsTheRest(t *testing.T) {
	w, err := NewWriter(&failingWriter{n: 1}, testHeader(false), testKey(t))
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		w.Event(at(1, StreamStdout, strings.Repeat("x", 1000)))
	}
	w.Malformed(errors.New("x"))
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), "no space") {
		t.Fatalf("Close = %v, want the write error", err)
	}
	if w.Err() == nil {
		t.Fatal("Err() is nil after a write error")
	}
	if _, err := NewWriter(&failingWriter{}, testHeader(false), testKey(t)); err == nil {
		t.Fatal("NewWriter hid the error writing the header")
	}
}

func TestWriterRefusesBadSetup(t *testing.T) {
	if _, err := NewWriter(&bytes.Buffer{}, testHeader(false), nil); err == nil {
		t.Error("accepted no key")
	}
	h := testHeader(false)
	h.Start = time.Time{}
	if _, err := NewWriter(&bytes.Buffer{}, h, testKey(t)); err == nil {
		t.Error("accepted no start time")
	}
}

func TestWriterMalformedNote(t *testing.T) {
	var out bytes.Buffer
	w, _ := NewWriter(&out, testHeader(false), testKey(t))
	w.now = func() time.Time { return start.Add(time.Second) }
	w.Malformed(errors.New("SPDY frames from the client: bad"))
	_ = w.Close()
	if got := castLines(t, out.Bytes()); len(got) != 1 || got[0] != "1 m kip: recording stopped: SPDY frames from the client: bad" {
		t.Fatalf("got %q", got)
	}
}

// headerSize decodes the width and height of a recording's header.
func headerSize(t *testing.T, b []byte) string {
	t.Helper()
	first, _, _ := bytes.Cut(b, []byte("\n"))
	var h struct{ Width, Height int }
	if err := json.Unmarshal(first, &h); err != nil {
		t.Fatalf("header %q: %v", first, err)
	}
	return fmt.Sprintf("%dx%d", h.Width, h.Height)
}

func TestWriterHeaderTakesTheTerminalSize(t *testing.T) {
	sized := testHeader(true)
	sized.Width, sized.Height = 100, 30
	tests := []struct {
		name     string
		header   Header
		events   []Event
		wantSize string
		want     []string
	}{{
		name:     "a TTY session's first resize sizes the header",
		header:   testHeader(true),
		events:   []Event{at(1, StreamResize, `{"Width":123,"Height":41}`), at(2, StreamStdout, "$ "), at(3, StreamResize, `{"Width":132,"Height":50}`)},
		wantSize: "123x41",
		want:     []string{"0.002 o $ ", "0.003 r 132x50"},
	}, {
		name:     "kubectl attach's size plus one, then the size: the last before anything else",
		header:   testHeader(true),
		events:   []Event{at(1, StreamResize, `{"Width":124,"Height":42}`), at(2, StreamResize, `{"Width":123,"Height":41}`), at(3, StreamStdin, "x")},
		wantSize: "123x41",
		want:     []string{"0.003 i x"},
	}, {
		name:     "split across pieces",
		header:   testHeader(true),
		events:   []Event{at(1, StreamResize, `{"Width":12`), at(2, StreamResize, `3,"Height":41}`), at(3, StreamStdin, "x")},
		wantSize: "123x41",
		want:     []string{"0.003 i x"},
	}, {
		name:     "output before any resize keeps 80x24",
		header:   testHeader(true),
		events:   []Event{at(1, StreamStdout, "$ "), at(2, StreamResize, `{"Width":123,"Height":41}`)},
		wantSize: "80x24",
		want:     []string{"0.001 o $ ", "0.002 r 123x41"},
	}, {
		name:     "an unreadable first resize keeps 80x24",
		header:   testHeader(true),
		events:   []Event{at(1, StreamResize, `{"Width":"x"}`), at(2, StreamResize, `{"Width":123,"Height":41}`)},
		wantSize: "80x24",
		want:     []string{"0.001 m kip: unreadable resize message", "0.002 r 123x41"},
	}, {
		name:     "a zero size is no terminal size",
		header:   testHeader(true),
		events:   []Event{at(1, StreamResize, `{"Width":0,"Height":0}`)},
		wantSize: "80x24",
		want:     []string{"0.001 r 0x0"},
	}, {
		name:     "a known size is kept",
		header:   sized,
		events:   []Event{at(1, StreamResize, `{"Width":123,"Height":41}`)},
		wantSize: "100x30",
		want:     []string{"0.001 r 123x41"},
	}, {
		name:     "a non-TTY session's header does not wait",
		header:   testHeader(false),
		events:   []Event{at(1, StreamResize, `{"Width":123,"Height":41}`)},
		wantSize: "80x24",
		want:     []string{"0.001 r 123x41"},
	}, {
		name:     "a session without events gets its header at close",
		header:   testHeader(true),
		wantSize: "80x24",
	}}
	for _, tt := range tests {
		b := record(t, tt.header, tt.events...)
		if got := headerSize(t, b); got != tt.wantSize {
			t.Errorf("%s: header size %s, want %s", tt.name, got, tt.wantSize)
		}
		if got := castLines(t, b); strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
		if err := Verify(bytes.NewReader(b), testKey(t).Public()); err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

// TestWriterHeaderWaitsNoLongerThanAFlush proves that a TTY session whose
// client sends nothing still has its header on disk within the flush
// interval, so a kip killed then leaves a recording that names the session.
func TestWriterHeaderWaitsNoLongerThanAFlush(t *testing.T) {
	var out syncBuffer
	w, err := NewWriter(&out, testHeader(true), testKey(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Close() }()
	w.mu.Lock()
	w.timer.Reset(20 * time.Millisecond)
	w.mu.Unlock()
	if out.String() != "" {
		t.Fatal("header written before the first resize or the flush (test assumes it waits)")
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), `"alice@example.com"`) {
		if time.Now().After(deadline) {
			t.Fatal("header not written by the flush timer")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := headerSize(t, []byte(out.String())); got != "80x24" {
		t.Fatalf("header size %s, want 80x24", got)
	}
	if err := Verify(strings.NewReader(out.String()), testKey(t).Public()); !errors.Is(err, ErrUnsealed) {
		t.Fatalf("Verify of a cut recording: %v", err)
	}
	// A resize after that is an event; the header is not written twice.
	w.Event(at(1, StreamResize, `{"Width":123,"Height":41}`))
	_ = w.Close()
	if n := strings.Count(out.String(), `"version":2`); n != 1 {
		t.Fatalf("%d headers", n)
	}
	if got := castLines(t, []byte(out.String())); len(got) != 1 || got[0] != "0.001 r 123x41" {
		t.Fatalf("got %q", got)
	}
}

// TestWriterBorrowsItsBuffer follows a session's buffer: none while idle,
// a small one for a little output, a large one once output streams, none
// again once the flush timer wrote it, and the recording exact throughout.
func TestWriterBorrowsItsBuffer(t *testing.T) {
	var out syncBuffer
	w, err := NewWriter(&out, testHeader(false), testKey(t))
	if err != nil {
		t.Fatal(err)
	}
	w.now = func() time.Time { return start.Add(10 * time.Second) }
	w.every = time.Hour // the test calls tick itself
	holds := func(step string, want int) {
		t.Helper()
		w.mu.Lock()
		defer w.mu.Unlock()
		if cap(w.buf) != want {
			t.Errorf("%s: holds a buffer of %d bytes, want %d", step, cap(w.buf), want)
		}
	}
	holds("header written", 0)
	w.Event(at(1, StreamStdin, "ls\r"))
	holds("a line typed", smallBufferSize)
	w.tick()
	holds("flushed", 0)
	stream := terminalOutput(300 << 10)
	for i := 0; i < len(stream); i += copyBuffer {
		w.Event(at(2+i>>10, StreamStdout, string(stream[i:min(len(stream), i+copyBuffer)])))
		if i == 0 {
			holds("one piece of output", largeBufferSize)
		}
	}
	holds("output streaming", largeBufferSize)
	w.tick()
	holds("output stopped, flushed", 0)
	w.Event(at(400, StreamStdin, "exit\r"))
	holds("typing again", smallBufferSize)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	holds("closed", 0)

	lines := castLines(t, []byte(out.String()))
	if len(lines) < 3 || lines[0] != "0.001 i ls\r" || lines[len(lines)-1] != "0.4 i exit\r" {
		t.Fatalf("lines %q … %q", lines[:min(2, len(lines))], lines[len(lines)-1])
	}
	var got strings.Builder
	for _, l := range lines[1 : len(lines)-1] {
		_, data, _ := strings.Cut(l, " o ")
		got.WriteString(data)
	}
	if got.String() != string(stream) {
		t.Fatalf("output recorded as %d bytes, want the %d relayed", got.Len(), len(stream))
	}
	if err := Verify(strings.NewReader(out.String()), testKey(t).Public()); err != nil {
		t.Fatal(err)
	}
}

// TestWriterHeaderLargerThanItsBuffer writes a header larger than the
// buffer a session starts with (a user in a thousand groups) exactly,
// whether at once or after waiting for the terminal's size.
func TestWriterHeaderLargerThanItsBuffer(t *testing.T) {
	for _, tty := range []bool{false, true} {
		h := testHeader(tty)
		for i := range 1000 {
			h.Identity.Groups = append(h.Identity.Groups, fmt.Sprintf("group-%05d", i))
		}
		b := record(t, h, at(1, StreamResize, `{"Width":100,"Height":30}`), at(2, StreamStdout, "hi"))
		first, _, _ := bytes.Cut(b, []byte("\n"))
		if len(first) <= smallBufferSize {
			t.Fatalf("header of %d bytes fits the small buffer (test assumes not)", len(first))
		}
		var hdr struct {
			Kip struct{ Groups []string }
		}
		if err := json.Unmarshal(first, &hdr); err != nil || len(hdr.Kip.Groups) != len(h.Identity.Groups) {
			t.Fatalf("TTY %v: header of %d groups read back with %d: %v", tty, len(h.Identity.Groups), len(hdr.Kip.Groups), err)
		}
		if err := Verify(bytes.NewReader(b), testKey(t).Public()); err != nil {
			t.Fatalf("TTY %v: %v", tty, err)
		}
		if got := castLines(t, b); got[len(got)-1] != "0.002 o hi" {
			t.Fatalf("TTY %v: lines %q", tty, got)
		}
	}
}
