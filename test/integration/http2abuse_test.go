package integration

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Section 9 of docs/security.md, HTTP/2 header abuse: the same bytes go to
// kip and to the kube-apiserver behind it, over raw HTTP/2 connections
// written frame by frame, and both must give the same verdict. This file
// holds the helpers; http2continuation_test.go and http2headers_test.go the
// tests.

// h2Target is a server the test sends the same bytes to.
type h2Target struct {
	name  string
	addr  string
	roots *x509.CertPool
}

// kipTarget is the kip at url, whose serving certificate the stack's CA
// signed.
func kipTarget(t *testing.T, url string) h2Target {
	t.Helper()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(stack.KipCAPEM) {
		t.Fatal("kip's serving CA is not valid PEM")
	}
	return h2Target{name: "kip", addr: strings.TrimPrefix(url, "https://"), roots: roots}
}

// upstreamTarget is the stack's kube-apiserver, reached directly.
func upstreamTarget(t *testing.T) h2Target {
	t.Helper()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(stack.Cluster.AdminConfig.CAData) {
		t.Fatal("the cluster's serving CA is not valid PEM")
	}
	return h2Target{name: "kube-apiserver", addr: strings.TrimPrefix(stack.Cluster.URL, "https://"), roots: roots}
}

// h2Verdict is how a server ended stream 1 or the whole connection.
type h2Verdict struct {
	status int           // the answer's :status, 0 if none
	reset  http2.ErrCode // RST_STREAM on stream 1
	goAway *http2.ErrCode
	closed bool // the connection ended without a GOAWAY
}

func (v h2Verdict) String() string {
	switch {
	case v.status != 0:
		return strconv.Itoa(v.status)
	case v.goAway != nil:
		return "GOAWAY " + v.goAway.String()
	case v.reset != 0:
		return "RST_STREAM " + v.reset.String()
	case v.closed:
		return "closed without GOAWAY"
	}
	return "nothing"
}

// h2Session is one raw HTTP/2 connection. The test writes frames through
// w; a goroutine reads the server's frames through r and reports how
// stream 1 or the connection ended. It never acknowledges SETTINGS: a
// write from it could block behind the test's own, and then it would miss
// the GOAWAY it is there to see.
type h2Session struct {
	conn    *tls.Conn
	w       *http2.Framer
	opened  time.Time
	written atomic.Int64 // header block bytes the test has written

	mu       sync.Mutex
	verdict  h2Verdict
	goAwayAt time.Duration // since opened
	body     bytes.Buffer
	done     chan struct{} // closed once stream 1 has its answer, or the connection ended
	ended    chan struct{} // closed once the connection ended
	endedAt  time.Duration
}

// dialH2 opens a raw HTTP/2 connection to target, presenting cert if any,
// and sends the preface and an empty SETTINGS frame.
func dialH2(t *testing.T, target h2Target, cert *tls.Certificate) *h2Session {
	t.Helper()
	s, err := openH2(t, target, cert)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// openH2 is dialH2 for a goroutine other than the test's, which must not
// call t.Fatal.
func openH2(t *testing.T, target h2Target, cert *tls.Certificate) (*h2Session, error) {
	cfg := &tls.Config{RootCAs: target.roots, NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	conn, err := tls.Dial("tcp", target.addr, cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = conn.Close() })
	if p := conn.ConnectionState().NegotiatedProtocol; p != "h2" {
		return nil, fmt.Errorf("%s did not agree to HTTP/2: %q", target.name, p)
	}
	// A liveness bound, not a timing assertion: well past the servers'
	// idle timeout of 90 s.
	_ = conn.SetDeadline(time.Now().Add(3 * time.Minute))
	s := &h2Session{conn: conn, w: http2.NewFramer(conn, nil), opened: time.Now(), done: make(chan struct{}), ended: make(chan struct{})}
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		return nil, err
	}
	if err := s.w.WriteSettings(); err != nil {
		return nil, err
	}
	go s.read()
	return s, nil
}

// read follows the server's frames until the connection ends.
func (s *h2Session) read() {
	r := http2.NewFramer(nil, s.conn)
	r.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	var doneOnce sync.Once
	answered := func() { doneOnce.Do(func() { close(s.done) }) }
	defer func() {
		s.mu.Lock()
		if s.verdict.goAway == nil {
			s.verdict.closed = true
		}
		s.endedAt = time.Since(s.opened)
		s.mu.Unlock()
		answered()
		close(s.ended)
	}()
	for {
		f, err := r.ReadFrame()
		if err != nil {
			return
		}
		s.mu.Lock()
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			if s.verdict.goAway == nil {
				code := f.ErrCode
				s.verdict.goAway, s.goAwayAt = &code, time.Since(s.opened)
			}
			answered()
		case *http2.RSTStreamFrame:
			if f.StreamID == 1 {
				s.verdict.reset = f.ErrCode
				answered()
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID == 1 && s.verdict.status == 0 {
				s.verdict.status, _ = strconv.Atoi(f.PseudoValue("status"))
			}
			if f.StreamID == 1 && f.StreamEnded() {
				answered()
			}
		case *http2.DataFrame:
			if f.StreamID == 1 {
				s.body.Write(f.Data())
				if f.StreamEnded() {
					answered()
				}
			}
		}
		s.mu.Unlock()
	}
}

// result waits up to wait for stream 1's answer or the connection's end.
func (s *h2Session) result(wait time.Duration) (h2Verdict, []byte, error) {
	if !within(s.done, wait) {
		return h2Verdict{}, nil, fmt.Errorf("no answer and no end of the connection after %v", wait)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.verdict, bytes.Clone(s.body.Bytes()), nil
}

// closedWithin waits up to wait for the server to close the connection,
// and returns when it sent GOAWAY (zero if it did not) and when it closed.
func (s *h2Session) closedWithin(wait time.Duration) (goAwayAt, closedAt time.Duration, err error) {
	if !within(s.ended, wait) {
		return 0, 0, fmt.Errorf("the connection is still open %v after it opened", time.Since(s.opened).Round(time.Second))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.goAwayAt, s.endedAt, nil
}

// within reports whether c is closed now or within wait.
func within(c <-chan struct{}, wait time.Duration) bool {
	select {
	case <-c:
		return true
	default:
	}
	select {
	case <-c:
		return true
	case <-time.After(wait):
		return false
	}
}

// writeBlock sends block on stream 1 as a HEADERS frame and CONTINUATION
// frames of at most 16 KiB, the default frame size, ending the headers
// only if end. The bytes from split on start a frame of their own.
func (s *h2Session) writeBlock(block []byte, split int, end bool) error {
	frags := append(chunks(block[:split]), chunks(block[split:])...)
	if len(frags) == 0 {
		frags = [][]byte{nil}
	}
	for i, frag := range frags {
		last := end && i == len(frags)-1
		var err error
		if i == 0 {
			err = s.w.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: frag, EndStream: true, EndHeaders: last})
		} else {
			err = s.w.WriteContinuation(1, last, frag)
		}
		if err != nil {
			return err
		}
		s.written.Add(int64(len(frag)))
	}
	return nil
}

// chunks cuts b into frames' worth.
func chunks(b []byte) [][]byte {
	var out [][]byte
	for ; len(b) > 0; b = b[min(h2Frame, len(b)):] {
		out = append(out, b[:min(h2Frame, len(b))])
	}
	return out
}

// h2Frame is the default (and smallest allowed) maximum frame size.
const h2Frame = 16 << 10

// h2GetFields are the fields of GET /api/v1/namespaces/default.
func h2GetFields(addr string) []hpack.HeaderField {
	return []hpack.HeaderField{
		{Name: ":method", Value: http.MethodGet}, {Name: ":scheme", Value: "https"},
		{Name: ":authority", Value: addr}, {Name: ":path", Value: "/api/v1/namespaces/default"},
		{Name: "accept", Value: "application/json"},
	}
}

// hpackBlock encodes fields, then extra, and returns the block and the
// offset at which extra's last field starts.
func hpackBlock(fields, extra []hpack.HeaderField) ([]byte, int) {
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range fields {
		_ = enc.WriteField(f)
	}
	split := block.Len()
	for i, f := range extra {
		if i == len(extra)-1 {
			split = block.Len()
		}
		_ = enc.WriteField(f)
	}
	return block.Bytes(), split
}

// listSize is the HTTP/2 header list size of fields (RFC 9113 6.5.2): each
// field's name and value, and 32 bytes.
func listSize(fields []hpack.HeaderField) int {
	n := 0
	for _, f := range fields {
		n += int(f.Size())
	}
	return n
}
