package recording

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/spdystream/spdy"
)

// The seed corpora in testdata/fuzz are written by TestWriteFuzzSeeds
// (KIP_WRITE_FUZZ_SEEDS=1 go test -run TestWriteFuzzSeeds) from the same
// builders the table tests use, so they start the fuzzer on real sessions.

// fuzzSession feeds client and server bytes in pieces of chunk+1 bytes,
// alternating directions, through p into a Writer, and checks what holds
// whatever the input: no panic, Malformed at most once and nothing after
// it, no empty events, each stream only from its own direction, and a
// recording that verifies.
func fuzzSession(t *testing.T, newParser func(Sink) Parser, client, server []byte, chunk uint8) {
	var out bytes.Buffer
	w, err := NewWriter(&out, testHeader(false), testKey(t))
	if err != nil {
		t.Fatal(err)
	}
	c := &checkingSink{t: t, next: w}
	p := newParser(c)
	n := int(chunk) + 1
	for len(client) > 0 || len(server) > 0 {
		k := min(n, len(client))
		c.fromClient = true
		p.FromClient(client[:k])
		client = client[k:]
		k = min(n, len(server))
		c.fromClient = false
		p.FromServer(server[:k])
		server = server[k:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := Verify(&out, testKey(t).Public()); err != nil {
		t.Fatalf("recording does not verify: %v", err)
	}
}

type checkingSink struct {
	t          *testing.T
	next       Sink
	fromClient bool
	malformed  int
}

func (c *checkingSink) Event(e Event) {
	if len(e.Data) == 0 || c.malformed > 0 || e.Stream.fromClient() != c.fromClient {
		c.t.Fatalf("bad event %v %q (from client %v, malformed %d)", e.Stream, e.Data, c.fromClient, c.malformed)
	}
	c.next.Event(e)
}

func (c *checkingSink) Malformed(err error) {
	if c.malformed++; c.malformed > 1 {
		c.t.Fatalf("Malformed reported twice: %v", err)
	}
	c.next.Malformed(err)
}

func FuzzWebSocket(f *testing.F) {
	f.Add(false, msg(true, 0, "ls\r"), msg(false, 1, "a\r\n"), uint8(3))
	f.Fuzz(func(t *testing.T, b64 bool, client, server []byte, chunk uint8) {
		proto := "v5.channel.k8s.io"
		if b64 {
			proto = "v4.base64.channel.k8s.io"
		}
		fuzzSession(t, func(s Sink) Parser {
			p, err := NewWebSocket(proto, s)
			if err != nil {
				t.Fatal(err)
			}
			p.now = fixedClock(start)
			return p
		}, client, server, chunk)
	})
}

func FuzzSPDY(f *testing.F) {
	f.Add(kubectlStreams(f).data(3, "ls\r").bytes(), newSPDYWire(f).data(5, "a\r\n").bytes(), uint8(7))
	f.Fuzz(func(t *testing.T, client, server []byte, chunk uint8) {
		fuzzSession(t, func(s Sink) Parser {
			p, err := NewSPDY(s)
			if err != nil {
				t.Fatal(err)
			}
			p.now = fixedClock(start)
			return p
		}, client, server, chunk)
	})
}

// FuzzPortForward checks, whatever the input, that a port-forward session
// records nothing but its summary (and at most one note), that the summary
// counts every byte relayed, and that the recording verifies.
func FuzzPortForward(f *testing.F) {
	f.Add(true, tunnel(true, newSPDYWire(f).forward(1, "8080", "0").data(3, "q").bytes(), 16),
		tunnel(false, newSPDYWire(f).data(3, "a").bytes(), 16), uint8(5))
	f.Fuzz(func(t *testing.T, tunnelled bool, client, server []byte, chunk uint8) {
		upgrade, protocol := "SPDY/3.1", ""
		if tunnelled {
			upgrade, protocol = "websocket", portForwardTunnel
		}
		h := testHeader(false)
		h.Identity.Subresource = "portforward"
		var out bytes.Buffer
		w, err := NewWriter(&out, h, testKey(t))
		if err != nil {
			t.Fatal(err)
		}
		c := &collector{}
		p := NewPortForward(upgrade, protocol, c)
		p.now = fixedClock(start)
		n := int(chunk) + 1
		total := [2]int{len(client), len(server)}
		for len(client) > 0 || len(server) > 0 {
			k := min(n, len(client))
			p.FromClient(client[:k])
			client = client[k:]
			k = min(n, len(server))
			p.FromServer(server[:k])
			server = server[k:]
		}
		p.End()
		if len(c.malformed) > 1 || len(c.events) != 1 || c.events[0].Stream != StreamPortForward {
			t.Fatalf("%d notes and events %v, want at most one note and the summary", len(c.malformed), c.events)
		}
		if s := p.Summary(); s.FromClient != int64(total[0]) || s.ToClient != int64(total[1]) || len(s.Ports) > portForwardMaxPorts {
			t.Fatalf("summary %+v of %d bytes from the client and %d to it", s, total[0], total[1])
		}
		for _, err := range c.malformed {
			w.Malformed(err)
		}
		w.Event(c.events[0])
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := Verify(&out, testKey(t).Public()); err != nil {
			t.Fatalf("recording does not verify: %v", err)
		}
	})
}

func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("KIP_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set KIP_WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz")
	}
	ws := map[string][3]any{
		"exec-tty": {false, cat(msg(true, 4, `{"Width":80,"Height":24}`), msg(true, 0, "ls\r"), msg(true, 255, "\x00")),
			cat(msg(false, 1, "a  b\r\n"), msg(false, 3, `{"status":"Success"}`), wsFrame(true, wsClose, false, []byte{3, 0xe8}))},
		"fragmented-ping": {false, cat(wsFrame(false, wsBinary, true, []byte("\x00ec")), wsFrame(true, wsPing, true, nil),
			wsFrame(true, wsContinuation, true, []byte("ho"))), cat(wsFrame(true, wsPong, false, nil), msg(false, 2, "err"))},
		"base64":         {true, wsFrame(true, wsText, true, []byte("0bHMK")), wsFrame(true, wsText, false, []byte("1aGVsbG8="))},
		"long-lengths":   {false, msg(true, 0, strings.Repeat("i", 200)), msg(false, 1, strings.Repeat("o", 70000))},
		"bad-mask":       {false, msg(false, 0, "x"), msg(true, 1, "y")},
		"after-close":    {false, []byte(nil), cat(wsFrame(true, wsClose, false, nil), msg(false, 1, "x"))},
		"huge-length":    {false, []byte(nil), []byte{0x82, 127, 0, 0, 0, 0, 0x40, 0, 0, 0, 1, 'a'}},
		"reserved-bits":  {false, []byte(nil), []byte{0xc2, 2, 1, 'x'}},
		"client-forgery": {false, cat(msg(true, 1, "out"), msg(true, 3, "{}")), msg(false, 0, "in")},
	}
	for name, s := range ws {
		writeSeed(t, "FuzzWebSocket", name, s[0], s[1], s[2], uint8(5))
	}
	spdyClient := kubectlStreams(t).data(3, "ls\r").data(7, `{"Width":100,"Height":30}`).bytes()
	spdyServer := newSPDYWire(t).data(5, "file\r\n").data(1, `{"status":"Success"}`).bytes()
	for name, s := range map[string][2][]byte{
		"exec-tty":      {spdyClient, spdyServer},
		"non-tty":       {newSPDYWire(t).syn(1, "stdout").syn(3, "stderr").syn(5, "stdin").data(5, "in").bytes(), newSPDYWire(t).data(1, "o").data(3, "e").bytes()},
		"headers-frame": {newSPDYWire(t).syn(1, "stdin").write(&spdy.HeadersFrame{StreamId: 1, Headers: http.Header{"A": {"b"}}}).syn(3, "stdout").bytes(), newSPDYWire(t).data(3, "x").bytes()},
		"truncated-syn": {truncatedSyn(t), nil},
		"twice-opened":  {newSPDYWire(t).syn(1, "stdin").syn(1, "stdout").bytes(), nil},
		"many-streams":  {manyStreams(t, 20), nil},
		"version-2":     {[]byte{0x80, 0x02, 0x00, 0x01, 0, 0, 0, 0}, nil},
		"big-data":      {kubectlStreams(t).bytes(), []byte{0, 0, 0, 5, 0, 0xff, 0xff, 0xff, 'a'}},
	} {
		writeSeed(t, "FuzzSPDY", name, s[0], s[1], uint8(9))
	}
	pfClient := newSPDYWire(t).forward(1, "8080", "0").data(3, "request").forward(5, "5432", "1").bytes()
	pfServer := newSPDYWire(t).write(&spdy.SynReplyFrame{StreamId: 1}).data(3, "answer").bytes()
	for name, s := range map[string][3]any{
		"spdy":           {false, pfClient, pfServer},
		"tunnel":         {true, tunnel(true, pfClient, 1<<10), tunnel(false, pfServer, 1<<10)},
		"tunnel-split":   {true, tunnel(true, pfClient, 7), tunnel(false, pfServer, 3)},
		"tunnel-text":    {true, wsFrame(true, wsText, true, pfClient), []byte(nil)},
		"tunnel-ping":    {true, cat(wsFrame(true, wsPing, true, nil), tunnel(true, pfClient, 9)), wsFrame(true, wsPong, false, nil)},
		"bad-port":       {false, newSPDYWire(t).forward(1, "-1", "0").forward(5, "99999", "1").bytes(), []byte(nil)},
		"many-ports":     {false, manyPorts(t, 70), []byte(nil)},
		"unmasked":       {true, tunnel(false, pfClient, 64), []byte(nil)},
		"spdy-version-2": {false, []byte{0x80, 0x02, 0x00, 0x01, 0, 0, 0, 0}, pfServer},
	} {
		writeSeed(t, "FuzzPortForward", name, s[0], s[1], s[2], uint8(11))
	}
}

// writeSeed writes one corpus file in the format go test reads.
func writeSeed(t *testing.T, target, name string, args ...any) {
	var b strings.Builder
	b.WriteString("go test fuzz v1\n")
	for _, a := range args {
		switch v := a.(type) {
		case bool:
			fmt.Fprintf(&b, "bool(%v)\n", v)
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", v)
		case uint8:
			fmt.Fprintf(&b, "byte(%q)\n", v)
		}
	}
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}
