package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// streamUpstream stands in for an upstream serving a watch: each request
// gets a 200 whose body sends chunk every interval (back to back when
// interval is 0) until the request is cancelled, which it reports.
type streamUpstream struct {
	chunk    string
	interval time.Duration
	// cancelled receives once per request whose context ended.
	cancelled chan struct{}
}

func newStreamUpstream(chunk string, interval time.Duration) *streamUpstream {
	return &streamUpstream{chunk: chunk, interval: interval, cancelled: make(chan struct{}, 16)}
}

func (u *streamUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Query().Get("watch") != "true" {
		return (&recordingTransport{}).RoundTrip(r)
	}
	pr, pw := io.Pipe()
	go func() {
		defer func() { u.cancelled <- struct{}{} }()
		stop := context.AfterFunc(r.Context(), func() { _ = pw.CloseWithError(r.Context().Err()) })
		defer stop()
		for {
			if _, err := io.WriteString(pw, u.chunk); err != nil {
				return
			}
			if u.interval > 0 {
				select {
				case <-time.After(u.interval):
				case <-r.Context().Done():
					return
				}
			}
		}
	}()
	return &http.Response{
		StatusCode:    http.StatusOK,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          pr,
		ContentLength: -1,
		Request:       r,
	}, nil
}

// endings counts the streams a proxy ended, by reason.
type endings struct {
	mu  sync.Mutex
	got map[string]int
}

func (e *endings) ended(reason string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.got == nil {
		e.got = map[string]int{}
	}
	e.got[reason]++
}

func (e *endings) count(reason string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.got[reason]
}

// protocols are the two a caller may reach kip with; the front server
// speaks HTTP/2 through x/net/http2, as kip's generic server does.
var protocols = []string{"http/1.1", "h2"}

// startFront serves h over TLS with HTTP/1.1 and x/net's HTTP/2, and
// returns a client that speaks proto to it.
func startFront(t *testing.T, h http.Handler, proto string) (*httptest.Server, *http.Client) {
	t.Helper()
	front := httptest.NewUnstartedServer(h)
	//nolint:staticcheck // k8s.io/apiserver serves kip's HTTP/2 with x/net's server; so must the test.
	if err := http2.ConfigureServer(front.Config, &http2.Server{}); err != nil {
		t.Fatal(err)
	}
	front.TLS = &tls.Config{NextProtos: []string{"h2", "http/1.1"}}
	front.StartTLS()
	t.Cleanup(front.Close)
	tlsConfig := front.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	rt := &http.Transport{TLSClientConfig: tlsConfig, Protocols: new(http.Protocols)}
	if proto == "h2" {
		rt.Protocols.SetHTTP2(true)
	} else {
		rt.Protocols.SetHTTP1(true)
	}
	t.Cleanup(rt.CloseIdleConnections)
	return front, &http.Client{Transport: rt}
}

// openStream starts a long-running GET (no deadline) through front and
// returns its body, closed when the test ends.
func openStream(t *testing.T, ctx context.Context, client *http.Client, url, proto string) io.Reader {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/api/v1/pods?watch=true", nil)
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"h2": 2, "http/1.1": 1}[proto]; res.ProtoMajor != want || res.StatusCode != http.StatusOK {
		t.Fatalf("got %s %s, want 200 over HTTP/%d", res.Proto, res.Status, want)
	}
	t.Cleanup(func() { _ = res.Body.Close() })
	return res.Body
}

func waitFor(t *testing.T, ch <-chan struct{}, within time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(within):
		t.Fatalf("%s did not happen within %v", what, within)
	}
}

// TestStreamWriteDeadline: a caller that stops reading a watch has it
// ended once a write to it has waited for the write timeout; the upstream
// request is cancelled with it, over HTTP/1.1 and HTTP/2.
func TestStreamWriteDeadline(t *testing.T) {
	for _, proto := range protocols {
		t.Run(proto, func(t *testing.T) {
			upstream := newStreamUpstream(strings.Repeat("x", 32<<10)+"\n", 0)
			var ends endings
			p := newProxy(testUpstream, upstream)
			WithLongRunning(LongRunning{WriteTimeout: 200 * time.Millisecond, Ended: ends.ended})(p)
			front, client := startFront(t, chainTo(p, certUser, false), proto)

			body := openStream(t, context.Background(), client, front.URL, proto)
			// Some of the stream arrives, then nothing more is read.
			if _, err := io.ReadFull(body, make([]byte, 64<<10)); err != nil {
				t.Fatal(err)
			}
			waitFor(t, upstream.cancelled, 10*time.Second, "the upstream request's cancellation")
			if n := ends.count(EndWriteDeadline); n != 1 {
				t.Errorf("%d streams counted as ended at their write deadline, want 1", n)
			}
			// What reached the caller ends in an error, not as a
			// finished response: the stream was cut.
			if _, err := io.Copy(io.Discard, body); err == nil {
				t.Error("the stream read as finished; want it reset")
			}
		})
	}
}

// TestIdleStreamOutlivesWriteTimeout: the write timeout bounds a write in
// progress, not the time between events: a watch that is read but gets
// no event for many times the timeout keeps going.
func TestIdleStreamOutlivesWriteTimeout(t *testing.T) {
	for _, proto := range protocols {
		t.Run(proto, func(t *testing.T) {
			upstream := newStreamUpstream(`{"type":"BOOKMARK"}`+"\n", 600*time.Millisecond)
			var ends endings
			p := newProxy(testUpstream, upstream)
			WithLongRunning(LongRunning{WriteTimeout: 100 * time.Millisecond, Ended: ends.ended})(p)
			front, client := startFront(t, chainTo(p, certUser, false), proto)

			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			body := bufio.NewReader(openStream(t, ctx, client, front.URL, proto))
			for i := range 4 {
				if line, err := body.ReadString('\n'); err != nil {
					t.Fatalf("event %d: %q, %v", i, line, err)
				}
			}
			if n := ends.count(EndWriteDeadline); n != 0 {
				t.Errorf("%d idle streams ended at their write deadline", n)
			}
		})
	}
}

// TestDrainEndsStreams: once kip drains, an open watch ends as a finished
// response, its upstream request is cancelled, and a new long-running
// request is refused with 503 and Retry-After, as short ones are.
func TestDrainEndsStreams(t *testing.T) {
	for _, proto := range protocols {
		t.Run(proto, func(t *testing.T) {
			upstream := newStreamUpstream(`{"type":"ADDED"}`+"\n", 50*time.Millisecond)
			var ends endings
			drain, startDraining := context.WithCancel(context.Background())
			defer startDraining()
			p := newProxy(testUpstream, upstream)
			WithLongRunning(LongRunning{WriteTimeout: time.Minute, Drain: drain, Ended: ends.ended})(p)
			front, client := startFront(t, chainTo(p, certUser, false), proto)

			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			body := bufio.NewReader(openStream(t, ctx, client, front.URL, proto))
			if _, err := body.ReadString('\n'); err != nil {
				t.Fatal(err)
			}
			startDraining()
			rest, err := io.ReadAll(body)
			if err != nil {
				t.Fatalf("the stream ended with %v, want a finished response", err)
			}
			if strings.Count(string(rest), "\n") != len(rest)/len(`{"type":"ADDED"}`+"\n") {
				t.Errorf("the stream ended in the middle of an event: %q", rest)
			}
			waitFor(t, upstream.cancelled, 10*time.Second, "the upstream request's cancellation")
			if n := ends.count(EndShutdown); n != 1 {
				t.Errorf("%d streams counted as ended by shutdown, want 1", n)
			}

			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, front.URL+"/api/v1/pods?watch=true", nil)
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = res.Body.Close() }()
			if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") != "1" {
				t.Errorf("a watch while draining got %s, Retry-After %q; want 503 with Retry-After 1", res.Status, res.Header.Get("Retry-After"))
			}
			if s := decodeStatus(t, res); !strings.Contains(s.Message, "shutting down") {
				t.Errorf("Status message %q does not say kip is shutting down", s.Message)
			}
			select {
			case <-upstream.cancelled:
				t.Error("the refused watch reached the upstream")
			default:
			}
		})
	}
}

// TestWriteGuardKeepsUpgrades: the guard lets http.ResponseController
// reach the writer underneath, which an upgrade hijacks.
func TestWriteGuardKeepsUpgrades(t *testing.T) {
	rec := httptest.NewRecorder()
	g := newWriteGuard(rec, time.Minute, nil)
	defer g.stop()
	if err := http.NewResponseController(g).Flush(); err != nil || !rec.Flushed {
		t.Errorf("flush through the guard: %v, flushed %v", err, rec.Flushed)
	}
	if g.Unwrap() != rec {
		t.Error("the guard does not unwrap to the writer it guards")
	}
}
