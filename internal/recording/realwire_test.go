package recording

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"k8s.io/streaming/pkg/httpstream"
	spdystreaming "k8s.io/streaming/pkg/httpstream/spdy"
)

// The tests here check the parsers against the libraries kubectl and the
// API server use, on the bytes those really put on the wire.

// tappedConn is the client's side of a connection, seen as kip sees it:
// what the client writes goes to the server, what it reads came from it.
// The HTTP upgrade (request and response heads) is skipped, as kip's relay
// starts after the 101.
type tappedConn struct {
	net.Conn
	mu          sync.Mutex
	p           Parser
	sent, recvd headSkipper
}

func (c *tappedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.mu.Lock()
	defer c.mu.Unlock()
	if rest := c.recvd.skip(b[:n]); len(rest) > 0 {
		c.p.FromServer(rest)
	}
	return n, err
}

func (c *tappedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.mu.Lock()
	defer c.mu.Unlock()
	if rest := c.sent.skip(b[:n]); len(rest) > 0 {
		c.p.FromClient(rest)
	}
	return n, err
}

// headSkipper drops an HTTP head (through its blank line) when on.
type headSkipper struct {
	on   bool
	seen []byte
}

func (h *headSkipper) skip(b []byte) []byte {
	if !h.on {
		return b
	}
	h.seen = append(h.seen, b...)
	i := bytes.Index(h.seen, []byte("\r\n\r\n"))
	if i < 0 {
		return nil
	}
	h.on = false
	return h.seen[i+4:]
}

func TestWebSocketWithGorilla(t *testing.T) {
	const proto = "v5.channel.k8s.io"
	up := websocket.Upgrader{Subprotocols: []string{proto}, WriteBufferSize: 64, ReadBufferSize: 64}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer func() { _ = conn.Close() }()
		for {
			_, m, err := conn.ReadMessage()
			if err != nil || len(m) == 0 {
				return
			}
			switch m[0] {
			case 0: // stdin: echo it upper-cased on stdout, in a fragmented message
				wr, _ := conn.NextWriter(websocket.BinaryMessage)
				_, _ = wr.Write(append([]byte{1}, bytes.ToUpper(m[1:])...))
				_ = wr.Close()
			case 255: // stdin closed: report the exit status and close
				_ = conn.WriteMessage(websocket.BinaryMessage, append([]byte{3}, `{"status":"Success"}`...))
				_ = conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
				return
			}
		}
	}))
	defer srv.Close()

	var c collector
	p, err := NewWebSocket(proto, &c)
	if err != nil {
		t.Fatal(err)
	}
	d := websocket.Dialer{
		Subprotocols: []string{proto}, WriteBufferSize: 64, ReadBufferSize: 64,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			return &tappedConn{Conn: conn, p: p, sent: headSkipper{on: true}, recvd: headSkipper{on: true}}, err
		},
	}
	conn, resp, err := d.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	defer func() { _ = conn.Close() }()
	input := "echo " + strings.Repeat("ab", 150) + "\n"
	send := func(m []byte) {
		if err := conn.WriteMessage(websocket.BinaryMessage, m); err != nil {
			t.Fatal(err)
		}
	}
	send(append([]byte{4}, `{"Width":132,"Height":43}`...))
	send(append([]byte{0}, input...))
	if err := conn.WriteControl(websocket.PingMessage, []byte("ping"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	send([]byte{0, 'x'})
	send([]byte{255, 0})
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			break
		}
	}
	want := "stdin=" + input + "x stdout=" + strings.ToUpper(input) + "X" +
		` error={"status":"Success"} resize={"Width":132,"Height":43}`
	if got := c.streams(); got != want {
		t.Errorf("recorded %q\nwant     %q", got, want)
	}
	checkMalformed(t, "gorilla", &c, "")
}

func TestSPDYWithKubernetesStreaming(t *testing.T) {
	clientConn, serverConn := net.Pipe()
	var c collector
	p, err := NewSPDY(&c)
	if err != nil {
		t.Fatal(err)
	}
	streams := make(chan httpstream.Stream, 8)
	server, err := spdystreaming.NewServerConnection(serverConn, func(s httpstream.Stream, _ <-chan struct{}) error {
		streams <- s
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = server.Close() }()
	client, err := spdystreaming.NewClientConnection(&tappedConn{Conn: clientConn, p: p})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = client.Close() }()

	open := func(streamType string) httpstream.Stream {
		h := http.Header{}
		h.Set("streamType", streamType)
		s, err := client.CreateStream(h)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	byType := map[string]httpstream.Stream{}
	clientStreams := map[string]httpstream.Stream{}
	for _, st := range []string{"error", "stdin", "stdout", "resize"} {
		clientStreams[st] = open(st)
		s := <-streams
		byType[s.Headers().Get("streamType")] = s
	}

	input := "cat /etc/hostname\r" + strings.Repeat("€", 100)
	go func() {
		// The "container": echo stdin upper-cased, then report success.
		buf := make([]byte, len(input))
		if _, err := io.ReadFull(byType["stdin"], buf); err == nil {
			_, _ = byType["stdout"].Write(bytes.ToUpper(buf))
		}
		_, _ = byType["error"].Write([]byte(`{"status":"Success"}`))
		_ = byType["stdout"].Close()
		_ = byType["error"].Close()
	}()
	if _, err := clientStreams["resize"].Write([]byte(`{"Width":90,"Height":20}` + "\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := clientStreams["stdin"].Write([]byte(input)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(clientStreams["stdout"]); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(clientStreams["error"]); err != nil {
		t.Fatal(err)
	}
	want := "stdin=" + input + " stdout=" + strings.ToUpper(input) +
		` error={"status":"Success"} resize={"Width":90,"Height":20}` + "\n"
	c.mu.Lock()
	got := c.streams()
	c.mu.Unlock()
	if got != want {
		t.Errorf("recorded %q\nwant     %q", got, want)
	}
	checkMalformed(t, "k8s.io/streaming", &c, "")
}
