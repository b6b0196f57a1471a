package rawh2

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestAnswer reads answers from Go's own HTTP/2 server: a whole answer
// with its body, one sent with Connection: close (a GOAWAY that lets the
// stream finish, then the answer), a stream reset for a malformed field,
// and a stream the server never opened because it is ending the
// connection.
func TestAnswer(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/close" {
			w.Header().Set("Connection", "close")
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte("got " + string(body)))
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()

	fields := func(path string, extra ...[2]string) [][2]string {
		return append([][2]string{{":method", http.MethodPost}, {":scheme", "https"}, {":authority", "test"}, {":path", path}}, extra...)
	}
	fr := dial(t, srv)
	r := Reader{Framer: fr}

	if err := Send(fr, 1, fields("/"), "hello"); err != nil {
		t.Fatal(err)
	}
	if a, err := r.Answer(1); err != nil || !a.Ended || a.Status != http.StatusAccepted || string(a.Body) != "got hello" || a.GoAway != nil {
		t.Fatalf("stream 1: %v, %v; want the whole answer", a, err)
	}

	if err := Send(fr, 3, fields("/", [2]string{"x-bad", "a\nb"}), ""); err != nil {
		t.Fatal(err)
	}
	if a, err := r.Answer(3); err != nil || !a.Reset || a.ResetCode != http2.ErrCodeProtocol || a.Closed() {
		t.Fatalf("stream 3, a malformed field: %v, %v; want RST_STREAM PROTOCOL_ERROR", a, err)
	}

	if err := Send(fr, 5, fields("/close"), "bye"); err != nil {
		t.Fatal(err)
	}
	a, err := r.Answer(5)
	if err != nil || !a.Ended || string(a.Body) != "got bye" || a.GoAway == nil || a.GoAway.Code != http2.ErrCodeNo || a.Closed() {
		t.Fatalf("stream 5, Connection: close: %v, %v (GOAWAY %+v); want the whole answer after a graceful GOAWAY", a, err, a.GoAway)
	}

	// The server is ending the connection: a new stream is refused or
	// never answered, and the reader says so rather than wait.
	if err := Send(fr, 7, fields("/"), "late"); err != nil {
		return // the server has closed already: nothing to read
	}
	late, err := r.Answer(7)
	if err == nil && late.Ended {
		t.Fatalf("stream 7, after the GOAWAY: %v; want no answer", late)
	}
}

func dial(t *testing.T, srv *httptest.Server) *http2.Framer {
	t.Helper()
	conn, err := tls.Dial("tcp", strings.TrimPrefix(srv.URL, "https://"), &tls.Config{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	fr, err := Start(conn)
	if err != nil {
		t.Fatal(err)
	}
	return fr
}
