package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/spdystream/spdy"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/kip-proxy/kip/internal/recording"
)

// mib is what one iteration of the relay benchmarks moves.
const mib = 1 << 20

// BenchmarkRelay is the proxy relaying a session's stdout, one MiB per
// iteration, recorded to a file as `kip serve --recording-dir` does and
// not recorded: the difference is what recording costs per MiB relayed,
// in time and in allocations. The upstream and the client sit on
// loopback TCP in this process and move ready-made frames, so that most
// of what is measured is the proxy's copy, the parser and the Writer.
func BenchmarkRelay(b *testing.B) {
	for _, proto := range []struct {
		name    string
		upgrade relayProtocol
	}{{"WebSocket", webSocketRelay(b)}, {"SPDY", spdyRelay(b)}} {
		for _, recorded := range []bool{false, true} {
			name := proto.name + "/unrecorded"
			if recorded {
				name = proto.name + "/recorded"
			}
			b.Run(name, func(b *testing.B) { benchRelay(b, proto.upgrade, recorded) })
		}
	}
}

// relayProtocol is what one protocol's session looks like on the wire.
type relayProtocol struct {
	// upgrade is the Upgrade header, subprotocol the WebSocket one.
	upgrade, subprotocol string
	// setup is what the client sends once the upgrade is done: SPDY
	// opens its streams, which tells the parser which one is stdout.
	setup []byte
	// stdout is one MiB of frames carrying stdout from the server.
	stdout []byte
}

func benchRelay(b *testing.B, proto relayProtocol, recorded bool) {
	upstream := stdoutUpstream(b, proto)
	target, _ := url.Parse(upstream.URL)
	tr := &http.Transport{}
	b.Cleanup(tr.CloseIdleConnections)
	p := newProxy(target, tr)
	var rec *fileRecorder
	if recorded {
		rec = newFileRecorder(b)
		WithRecorder(rec)(p)
	}
	info := &request.RequestInfo{IsResourceRequest: true, Verb: "create", Resource: "pods", Subresource: "exec", Namespace: "ns", Name: "pod"}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chainTo(p, certUser, false).ServeHTTP(w, r.WithContext(request.WithRequestInfo(r.Context(), info)))
	}))
	b.Cleanup(front.Close)

	conn, stream := openSession(b, front.Listener.Addr().String(), proto)
	b.SetBytes(mib)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := io.CopyN(io.Discard, stream, mib); err != nil {
			b.Fatal(err)
		}
	}
	_ = conn.Close()
	if rec == nil {
		return
	}
	// A recording that could not be written would have made this measure
	// nothing.
	select {
	case err := <-rec.closed:
		if err != nil {
			b.Errorf("sealing the recording: %v", err)
		}
	case <-time.After(10 * time.Second):
		b.Error("the recording was not sealed within 10s of the session's end")
	}
}

// openSession upgrades a connection to the front, sends the protocol's
// setup and returns what the client reads from.
func openSession(b *testing.B, addr string, proto relayProtocol) (net.Conn, io.Reader) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Minute))
	req := "GET /api/v1/namespaces/ns/pods/pod/exec?command=sh&stdout=true HTTP/1.1\r\nHost: kip\r\nConnection: Upgrade\r\nUpgrade: " + proto.upgrade + "\r\n"
	if proto.subprotocol != "" {
		req += "Sec-WebSocket-Protocol: " + proto.subprotocol + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		b.Fatal(err)
	}
	br := bufio.NewReaderSize(conn, 64<<10)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		b.Fatal(err)
	}
	_ = res.Body.Close() // a 101's body is empty: the stream is br
	if res.StatusCode != http.StatusSwitchingProtocols {
		b.Fatalf("the proxy answered %s, want 101", res.Status)
	}
	if _, err := conn.Write(proto.setup); err != nil {
		b.Fatal(err)
	}
	return conn, br
}

// stdoutUpstream switches to the protocol asked for, reads and drops what
// the client sends, and writes proto.stdout again and again until the
// connection closes.
func stdoutUpstream(b *testing.B, proto relayProtocol) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer func() { _ = conn.Close() }()
		_, _ = fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %s\r\n", r.Header.Get("Upgrade"))
		if proto.subprotocol != "" {
			_, _ = fmt.Fprintf(rw, "Sec-WebSocket-Protocol: %s\r\n", proto.subprotocol)
		}
		_, _ = rw.WriteString("\r\n")
		if err := rw.Flush(); err != nil {
			return
		}
		go func() { _, _ = io.Copy(io.Discard, rw) }()
		for {
			if _, err := conn.Write(proto.stdout); err != nil {
				return
			}
		}
	}))
	b.Cleanup(s.Close)
	return s
}

// terminalLines is build output, which the recording escapes no more
// than a terminal's output makes it: a tab and the line ends.
func terminalLines(n int) []byte {
	line := "ok  \tgithub.com/kip-proxy/kip/internal/recording\t0.365s (cached) coverage: 91.2% of statements\r\n"
	return []byte(strings.Repeat(line, n/len(line)+1)[:n])
}

// relayFrame is the stdout payload per frame: what a 32 KiB copy buffer
// upstream hands the framer.
const relayFrame = 32 << 10

// webSocketRelay is the v5 channel protocol: unmasked binary frames from
// the server, each channel 1 (stdout) and its data.
func webSocketRelay(b *testing.B) relayProtocol {
	var wire bytes.Buffer
	out := terminalLines(mib)
	for len(out) > 0 {
		n := min(len(out), relayFrame-1)
		payload := 1 + n
		wire.WriteByte(0x82) // FIN, binary
		switch {
		case payload < 126:
			wire.WriteByte(byte(payload))
		case payload <= 0xffff:
			wire.WriteByte(126)
			_ = binary.Write(&wire, binary.BigEndian, uint16(payload))
		default:
			wire.WriteByte(127)
			_ = binary.Write(&wire, binary.BigEndian, uint64(payload))
		}
		wire.WriteByte(1)
		wire.Write(out[:n])
		out = out[n:]
	}
	return relayProtocol{upgrade: "websocket", subprotocol: "v5.channel.k8s.io", stdout: wire.Bytes()}
}

// spdyRelay is kubectl's non-TTY exec over SPDY/3.1: the client opens
// error, stdout and stderr streams; the server sends data frames on
// stdout. Frames come from spdystream's own framer.
func spdyRelay(b *testing.B) relayProtocol {
	var setup, stdout bytes.Buffer
	client, err := spdy.NewFramer(&setup, nil)
	if err != nil {
		b.Fatal(err)
	}
	for id, kind := range map[spdy.StreamId]string{1: "error", 3: "stdout", 5: "stderr"} {
		if err := client.WriteFrame(&spdy.SynStreamFrame{StreamId: id, Headers: http.Header{"Streamtype": {kind}}}); err != nil {
			b.Fatal(err)
		}
	}
	server, err := spdy.NewFramer(&stdout, nil)
	if err != nil {
		b.Fatal(err)
	}
	out := terminalLines(mib)
	for len(out) > 0 {
		n := min(len(out), relayFrame)
		if err := server.WriteFrame(&spdy.DataFrame{StreamId: 3, Data: out[:n]}); err != nil {
			b.Fatal(err)
		}
		out = out[n:]
	}
	return relayProtocol{upgrade: "SPDY/3.1", setup: setup.Bytes(), stdout: stdout.Bytes()}
}

// fileRecorder records each session to a file of its own, as
// sessions.Dir does (which this package cannot import): a Writer sealing
// with an Ed25519 key over an *os.File.
type fileRecorder struct {
	dir string
	key ed25519.PrivateKey
	seq atomic.Int64
	// closed receives the outcome of each recording's Close.
	closed chan error
}

// Ready says the recorder can record: a temporary directory always can.
func (r *fileRecorder) Ready(context.Context) error { return nil }

func newFileRecorder(b *testing.B) *fileRecorder {
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		b.Fatal(err)
	}
	return &fileRecorder{dir: b.TempDir(), key: key, closed: make(chan error, 16)}
}

func (f *fileRecorder) Open(*http.Request) (Recording, error) {
	file, err := os.Create(filepath.Join(f.dir, fmt.Sprintf("%d.cast", f.seq.Add(1))))
	if err != nil {
		return nil, err
	}
	h := recording.Header{Identity: recording.Identity{User: "kip-bench", Namespace: "ns", Pod: "pod", Subresource: "exec"}, Start: time.Now()}
	w, err := recording.NewWriter(file, h, f.key)
	if err != nil {
		_ = file.Close()
		return nil, err
	}
	return &recordedFile{Writer: w, f: file, closed: f.closed}, nil
}

type recordedFile struct {
	*recording.Writer
	f      *os.File
	closed chan<- error
}

// Close seals the recording and closes its file.
func (r *recordedFile) Close() error {
	err := r.Writer.Close()
	if cerr := r.f.Close(); err == nil {
		err = cerr
	}
	r.closed <- err
	return err
}
