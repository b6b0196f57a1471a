package recording

import (
	"bytes"
	"io"
	"runtime"
	"strings"
	"testing"
)

// copyBuffer is the size of the pieces kip relays (io.Copy's buffer).
const copyBuffer = 32 << 10

// terminalOutput is output like a build log: printable text and newlines,
// with a few escape sequences that must be escaped in JSON.
func terminalOutput(n int) []byte {
	line := "\x1b[32mok\x1b[0m  github.com/kip-proxy/kip/internal/recording\t0.365s \"cached\"\r\n"
	return []byte(strings.Repeat(line, n/len(line)+1)[:n])
}

func wsStdoutStream(total int) []byte {
	out := terminalOutput(total)
	var b bytes.Buffer
	for len(out) > 0 {
		n := min(len(out), copyBuffer-1)
		b.Write(wsFrame(true, wsBinary, false, append([]byte{1}, out[:n]...)))
		out = out[n:]
	}
	return b.Bytes()
}

func spdyStdoutStream(t testing.TB, total int) []byte {
	out := terminalOutput(total)
	w := newSPDYWire(t)
	for len(out) > 0 {
		n := min(len(out), copyBuffer)
		w.data(5, string(out[:n]))
		out = out[n:]
	}
	return w.bytes()
}

// benchRelay measures parser and writer on a stdout stream fed in the
// pieces a relay copies.
func benchRelay(b *testing.B, newParser func(Sink) Parser, setup, stream []byte, sink func(*Writer) Sink) {
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		w, err := NewWriter(io.Discard, testHeader(true), testKey(b))
		if err != nil {
			b.Fatal(err)
		}
		p := newParser(sink(w))
		p.FromClient(setup)
		feedChunks(p.FromServer, stream, copyBuffer)
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func newWS(s Sink) Parser {
	p, _ := NewWebSocket("v5.channel.k8s.io", s)
	return p
}

func newSPDYParser(s Sink) Parser {
	p, _ := NewSPDY(s)
	return p
}

type discardSink struct{}

func (discardSink) Event(Event)     {}
func (discardSink) Malformed(error) {}

func writerSink(w *Writer) Sink { return w }
func parserOnly(*Writer) Sink   { return discardSink{} }
func BenchmarkStdoutWebSocket(b *testing.B) {
	benchRelay(b, newWS, nil, wsStdoutStream(8<<20), writerSink)
}

func BenchmarkStdoutSPDY(b *testing.B) {
	benchRelay(b, newSPDYParser, kubectlStreams(b).bytes(), spdyStdoutStream(b, 8<<20), writerSink)
}

func BenchmarkStdoutWebSocketParserOnly(b *testing.B) {
	benchRelay(b, newWS, nil, wsStdoutStream(8<<20), parserOnly)
}

func BenchmarkStdoutSPDYParserOnly(b *testing.B) {
	benchRelay(b, newSPDYParser, kubectlStreams(b).bytes(), spdyStdoutStream(b, 8<<20), parserOnly)
}

// openSession is a recorded session as it sits between messages: streams
// opened, a resize, some input and output relayed and written out by the
// flush timer, nothing closed.
type openSession struct {
	p Parser
	w *Writer
}

func openSessions(t testing.TB, n int, spdy bool) []openSession {
	var client, server []byte
	if spdy {
		client = kubectlStreams(t).data(7, `{"Width":120,"Height":40}`).data(3, "ls -l\r").bytes()
		server = newSPDYWire(t).data(5, string(terminalOutput(3000))).bytes()
	} else {
		client = cat(msg(true, 4, `{"Width":120,"Height":40}`), msg(true, 0, "ls -l\r"))
		server = msg(false, 1, string(terminalOutput(3000)))
	}
	key := testKey(t)
	sessions := make([]openSession, n)
	for i := range sessions {
		w, err := NewWriter(io.Discard, testHeader(true), key)
		if err != nil {
			t.Fatal(err)
		}
		var p Parser
		if spdy {
			p = newSPDYParser(w)
		} else {
			p = newWS(w)
		}
		p.FromClient(client)
		p.FromServer(server)
		w.tick()
		sessions[i] = openSession{p, w}
	}
	return sessions
}

// heapPerSession is the heap n open sessions hold, divided by n. Closed
// Writers of earlier calls may still be freed while it measures (a stopped
// timer is dropped lazily), which can only lower the figure: callers take
// the largest of a few. Two collections empty the Writers' buffer pools,
// which would otherwise hide, or add, buffers borrowed.
func heapPerSession(t testing.TB, n int, spdy bool) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	sessions := openSessions(t, n, spdy)
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	for _, s := range sessions {
		_ = s.w.Close()
	}
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
}

func maxHeapPerSession(t testing.TB, n int, spdy bool) float64 {
	var most float64
	for range 3 {
		most = max(most, heapPerSession(t, n, spdy))
	}
	return most
}

// TestHeapPerOpenSession holds the budget: at most 64 KiB of heap
// per open recorded session, beyond what relaying it costs anyway.
func TestHeapPerOpenSession(t *testing.T) {
	for _, spdy := range []bool{false, true} {
		per := maxHeapPerSession(t, 200, spdy)
		t.Logf("SPDY %v: %.0f bytes of heap per open session", spdy, per)
		if per > 64<<10 {
			t.Errorf("SPDY %v: %.0f bytes of heap per open session, budget 64 KiB", spdy, per)
		}
	}
}

func BenchmarkHeapPerOpenSession(b *testing.B) {
	for _, c := range []struct {
		name string
		spdy bool
	}{{"WebSocket", false}, {"SPDY", true}} {
		b.Run(c.name, func(b *testing.B) {
			var per float64
			for b.Loop() {
				per = max(per, heapPerSession(b, 500, c.spdy))
			}
			b.ReportMetric(per, "B/session")
		})
	}
}

// portForwardUpload is 8 MiB a client forwards on one connection, as
// SPDY DATA frames, tunnelled in masked WebSocket messages when tunnelled.
func portForwardUpload(b *testing.B, tunnelled bool) []byte {
	w := newSPDYWire(b).forward(1, "5432", "0")
	data := bytes.Repeat([]byte("forwarded payload "), copyBuffer/18)
	for range (8 << 20) / len(data) {
		w.data(3, string(data))
	}
	if !tunnelled {
		return w.bytes()
	}
	return tunnel(true, w.bytes(), copyBuffer)
}

// benchPortForward measures what logging a port-forward costs the relay
// per byte the client sends: with the tunnel, every byte is unmasked to
// find the SPDY frames in it.
func benchPortForward(b *testing.B, tunnelled bool) {
	upgrade, protocol := "SPDY/3.1", ""
	if tunnelled {
		upgrade, protocol = "websocket", portForwardTunnel
	}
	stream := portForwardUpload(b, tunnelled)
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		p := NewPortForward(upgrade, protocol, discardSink{})
		feedChunks(p.FromClient, stream, copyBuffer)
		p.End()
	}
}

func BenchmarkPortForwardSPDY(b *testing.B)   { benchPortForward(b, false) }
func BenchmarkPortForwardTunnel(b *testing.B) { benchPortForward(b, true) }
