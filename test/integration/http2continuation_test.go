package integration

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/kip-proxy/kip/internal/rig/procstat"
)

// floodField is one HPACK field, literal and never indexed, of exactly
// 1 KiB: sixteen of them fill a frame, and any number of them in a row is
// a valid header block however it is cut into frames. Its value is not
// Huffman-coded, so a server that reads it byte by byte sees no field end
// until the last byte.
var floodField = func() []byte {
	const name, valueLen = "x-flood", 1012
	b := []byte{0x10, byte(len(name))} // literal never indexed, new name
	b = append(b, name...)
	// The value's length: 1012 in HPACK's 7-bit prefix integer.
	b = append(b, 0x7f, byte((valueLen-127)&0x7f|0x80), byte((valueLen-127)>>7))
	return append(b, bytes.Repeat([]byte("v"), valueLen)...)
}()

// idleTimeout is the HTTP/2 idle timeout of both servers
// (k8s.io/apiserver's SecureServingInfo): a connection with no open
// stream is sent GOAWAY after it.
const idleTimeout = 90 * time.Second

// TestHTTP2ContinuationFlood sends CVE-2023-45288's shape to kip and to
// kube-apiserver: a HEADERS frame without END_HEADERS, then CONTINUATION
// frames full of 1 KiB header fields, as fast as the connection takes
// them, each connection trying 128 MiB. Eight such connections run at
// once against each server.
//
// Verdict, the same for both: once the header list passes the limit
// (1 MiB), the next CONTINUATION frame ends the connection with GOAWAY
// PROTOCOL_ERROR; each connection is closed after a few MiB at most
// (what the kernel buffers included), and kip's memory grows by far less
// than what the clients tried to send. kip serves a normal client
// meanwhile and after.
func TestHTTP2ContinuationFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("floods a kip of its own")
	}
	kip := startKipProc(t)
	_, normal := namespaceReader(t, "h2-flood")
	url := kip.URL + "/api/v1/namespaces/default"
	if err := responsive(normal, url); err != nil {
		t.Fatal(err)
	}
	const conns, tries = 8, 128 << 20
	before := kip.rssKiB(t)
	sampler := procstat.StartSampler(kip.Pid(), 50*time.Millisecond)
	for _, target := range []h2Target{kipTarget(t, kip.URL), upstreamTarget(t)} {
		t.Run(target.name, func(t *testing.T) {
			var wg sync.WaitGroup
			results := make(chan string, conns)
			for range conns {
				wg.Go(func() { results <- floodOne(t, target, tries) })
			}
			wg.Wait()
			close(results)
			for r := range results {
				if r != "" {
					t.Error(r)
				}
			}
		})
	}
	peak := sampler.Stop() >> 10
	t.Logf("kip's resident memory: %d MiB before, peak %d MiB while %d connections tried %d MiB each", before>>10, peak>>10, conns, tries>>20)
	if grown := int(peak) - before; grown > conns*tries>>10/4 {
		t.Errorf("kip's memory grew by %d MiB while the clients tried %d MiB", grown>>10, conns*tries>>20)
	}
	if err := responsive(normal, url); err != nil {
		t.Fatalf("after the flood: %v", err)
	}
}

// floodOne runs one flooding connection and says what went wrong, if
// anything.
func floodOne(t *testing.T, target h2Target, tries int) string {
	s, err := openH2(t, target, nil)
	if err != nil {
		return fmt.Sprintf("%s: %v", target.name, err)
	}
	head, _ := hpackBlock(h2GetFields(h2Authority), nil)
	frame := bytes.Repeat(floodField, h2Frame/len(floodField))
	go func() {
		if s.w.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: head, EndStream: true}) != nil {
			return
		}
		for s.written.Load() < int64(tries) {
			select {
			case <-s.ended:
				return
			default:
			}
			if s.w.WriteContinuation(1, false, frame) != nil {
				return
			}
			s.written.Add(int64(len(frame)))
		}
	}()
	v, _, err := s.result(time.Minute)
	if err != nil {
		return fmt.Sprintf("%s: %v after %d MiB written", target.name, err, s.written.Load()>>20)
	}
	if _, _, err := s.closedWithin(30 * time.Second); err != nil {
		return fmt.Sprintf("%s answered %v, but: %v", target.name, v, err)
	}
	written := s.written.Load()
	t.Logf("%s: %v; the client had written %.1f MiB", target.name, v, float64(written)/(1<<20))
	switch {
	case v.String() != "GOAWAY "+http2.ErrCodeProtocol.String():
		return fmt.Sprintf("%s answered %v, want GOAWAY PROTOCOL_ERROR", target.name, v)
	case written > 32<<20:
		return fmt.Sprintf("%s read %d MiB of headers before closing", target.name, written>>20)
	}
	return ""
}

// TestHTTP2ContinuationTrickle holds HTTP/2 header blocks open at kip and
// at kube-apiserver, ten connections of each kind per server: a HEADERS
// frame without END_HEADERS, then either one byte of a header value per
// CONTINUATION frame every half second (a slowloris), or empty
// CONTINUATION frames five hundred a second, forever (which add nothing
// to the header list, so the CVE-2023-45288 fix never fires).
//
// Verdict, the same for both: the stream never opens, so the connection
// counts as idle; after the idle timeout (90 s from the preface, however
// many frames came since) the server sends GOAWAY NO_ERROR and closes the
// connection a second later. Memory per connection is bounded by the
// header list limit (TestHTTP2ContinuationFlood). kip serves a normal
// client every second meanwhile. What the idle timeout does not bound: a
// block trickled on a connection that also has an open stream (a watch)
// lasts until that stream ends, at kube-apiserver as at kip.
func TestHTTP2ContinuationTrickle(t *testing.T) {
	if testing.Short() {
		t.Skip("lasts the servers' idle timeout, 90 s")
	}
	cert, normal := namespaceReader(t, "h2-trickle")
	url := stack.KipURL + "/api/v1/namespaces/default"
	const perKind = 10
	type run struct {
		what string
		s    *h2Session
	}
	var runs []run
	stop := make(chan struct{})
	defer close(stop)
	for _, target := range []h2Target{kipTarget(t, stack.KipURL), upstreamTarget(t)} {
		for range perKind {
			runs = append(runs,
				run{target.name + ", one byte every 500 ms", trickleHeaders(t, target, cert, stop, 500*time.Millisecond, 1)},
				run{target.name + ", empty frames every 2 ms", trickleHeaders(t, target, cert, stop, 2*time.Millisecond, 0)})
		}
	}
	served := 0
	for _, r := range runs {
		for {
			select {
			case <-r.s.ended:
			case <-time.After(time.Second):
				if err := responsive(normal, url); err != nil {
					t.Fatalf("while the header blocks trickle: %v", err)
				}
				served++
				continue
			}
			break
		}
	}
	latest := map[string]time.Duration{}
	for _, r := range runs {
		goAwayAt, closedAt, err := r.s.closedWithin(0)
		if err != nil {
			t.Fatalf("%s: %v", r.what, err)
		}
		v, _, _ := r.s.result(0)
		if closedAt > latest[r.what] {
			latest[r.what] = closedAt
			t.Logf("%s: %v at %v, closed at %v, %d bytes of header block sent", r.what, v,
				goAwayAt.Round(100*time.Millisecond), closedAt.Round(100*time.Millisecond), r.s.written.Load())
		}
		switch {
		case v.String() != "GOAWAY "+http2.ErrCodeNo.String():
			t.Errorf("%s: %v, want GOAWAY NO_ERROR", r.what, v)
		case closedAt > idleTimeout+15*time.Second:
			t.Errorf("%s: closed %v after the preface, want within the idle timeout (%v) and a little", r.what, closedAt, idleTimeout)
		}
	}
	t.Logf("a normal client was served %d times while the blocks trickled", served)
	if err := responsive(normal, url); err != nil {
		t.Fatalf("after the trickle: %v", err)
	}
}

// trickleHeaders opens a connection to target and sends, from a goroutine until
// stop or the connection's end, a HEADERS frame without END_HEADERS that
// ends inside a field's value, then a CONTINUATION frame with the value's
// next n bytes (none if n is 0) every interval.
func trickleHeaders(t *testing.T, target h2Target, cert *tls.Certificate, stop <-chan struct{}, interval time.Duration, n int) *h2Session {
	t.Helper()
	s := dialH2(t, target, cert)
	head, _ := hpackBlock(h2GetFields(h2Authority), nil)
	head = append(head, floodField[:len(floodField)-1000]...)
	if err := s.w.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: head, EndStream: true}); err != nil {
		t.Fatal(err)
	}
	s.written.Add(int64(len(head)))
	go func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		// 999 bytes at most: the field never ends.
		for sent := 0; ; sent += n {
			select {
			case <-stop:
				return
			case <-s.ended:
				return
			case <-tick.C:
			}
			if n > 0 && sent+n >= 1000 {
				n = 0
			}
			if s.w.WriteContinuation(1, false, bytes.Repeat([]byte("v"), n)) != nil {
				return
			}
			s.written.Add(int64(n))
		}
	}()
	return s
}
