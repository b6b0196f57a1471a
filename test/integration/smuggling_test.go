package integration

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/kip-proxy/kip/internal/rig/harness"
	"github.com/kip-proxy/kip/internal/rig/rawh2"
)

// Rule 2 of docs/security.md, at the framing level: HTTP/1.1 requests whose
// framing is ambiguous and HTTP/2 streams that break the protocol's rules
// never smuggle a request past kip's authentication.

// smuggledRequest is the request hidden behind another: with no
// credential of its own it gets 401 when read as a request, and kip must
// never answer it as part of the request in front of it.
const smuggledRequest = "GET /api/v1/namespaces/kube-system/secrets HTTP/1.1\r\nHost: kip\r\n\r\n"

// TestAdversarialHTTP1Framing writes HTTP/1.1 requests whose framing is
// ambiguous or malformed on a raw TLS connection. Go's server, which parses
// every request kip serves, refuses what RFC 9112 lets it refuse (400, 431,
// 501, then it closes the connection) and otherwise reads one framing only:
// Transfer-Encoding over Content-Length, obs-fold joined into the previous
// value. Whatever follows a request's body is a new request that kip
// authenticates on its own, so a request hidden behind one that carries a
// token gets 401. kip then frames what it forwards afresh (HTTP/2 upstream),
// so the upstream cannot read it another way. Each case checks every answer
// on the connection, then that nothing else comes.
func TestAdversarialHTTP1Framing(t *testing.T) {
	ns := createNamespace(t)
	const account = "adversarial-framing"
	token := serviceAccountToken(t, ns, account)
	saUser := "system:serviceaccount:" + ns + ":" + account
	caller := harness.UniqueName("adv-framing")
	cert := rawUserCert(t, caller)
	auth := "Authorization: Bearer " + token + "\r\n"
	body := ssrBody
	chunked := httpChunk(body) + "0\r\n\r\n"
	big := strings.Repeat("a", 1<<20+64<<10)

	tests := []struct {
		name string
		cert bool // the connection presents the caller's certificate; else requests carry the token
		data string
		// want are the codes of the answers, in order: 201 is a
		// SelfSubjectReview naming the connection's identity.
		want   []int
		closed bool // kip closes the connection after them
	}{
		{name: "Content-Length and Transfer-Encoding: chunked wins, the rest is a new request",
			data: clteRequest(auth, "Content-Length: %d\r\nTransfer-Encoding: chunked\r\n", chunked, smuggledRequest),
			want: []int{http.StatusCreated, http.StatusUnauthorized}},
		{name: "Transfer-Encoding before Content-Length",
			data: clteRequest(auth, "Transfer-Encoding: chunked\r\nContent-Length: %d\r\n", chunked, smuggledRequest),
			want: []int{http.StatusCreated, http.StatusUnauthorized}},
		{name: "Content-Length: 0 with a chunked body",
			data: clteRequest(auth, "Content-Length: 0\r\nTransfer-Encoding: chunked\r\n", chunked, smuggledRequest),
			want: []int{http.StatusCreated, http.StatusUnauthorized}},
		{name: "two different Content-Lengths",
			data: rawPOST(auth+fmt.Sprintf("Content-Length: %d\r\nContent-Length: %d\r\n", len(body), len(body)+len(smuggledRequest)), body+smuggledRequest),
			want: []int{http.StatusBadRequest}, closed: true},
		{name: "two equal Content-Lengths frame the body once",
			data: rawPOST(auth+fmt.Sprintf("Content-Length: %d\r\nContent-Length: %d\r\n", len(body), len(body)), body+smuggledRequest),
			want: []int{http.StatusCreated, http.StatusUnauthorized}},
		{name: "Content-Length with a sign",
			data: rawPOST(auth+fmt.Sprintf("Content-Length: +%d\r\n", len(body)), body+smuggledRequest),
			want: []int{http.StatusBadRequest}, closed: true},
		{name: "Content-Length as a list in one field",
			data: rawPOST(auth+fmt.Sprintf("Content-Length: %d, %d\r\n", len(body), len(body)), body+smuggledRequest),
			want: []int{http.StatusBadRequest}, closed: true},
		{name: "Transfer-Encoding: chunked, identity",
			data: rawPOST(auth+"Transfer-Encoding: chunked, identity\r\n", chunked+smuggledRequest),
			want: []int{http.StatusNotImplemented}, closed: true},
		{name: "two Transfer-Encoding fields",
			data: rawPOST(auth+"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", chunked+smuggledRequest),
			want: []int{http.StatusNotImplemented}, closed: true},
		{name: "Transfer-Encoding on HTTP/1.0 is ignored: Content-Length frames the body",
			data: "POST " + ssrPath + " HTTP/1.0\r\nHost: kip\r\nContent-Type: application/json\r\n" + auth +
				"Transfer-Encoding: chunked\r\n" + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body + smuggledRequest,
			want: []int{http.StatusCreated}, closed: true},
		{name: "obs-fold hides Impersonate-User inside the value of the header above",
			data: ssrRequest(auth+"X-Note: folded\r\n Impersonate-User: kip-admin\r\n\tImpersonate-Group: system:masters\r\n", body),
			want: []int{http.StatusCreated}},
		{name: "obs-fold as the first header line",
			data: "POST " + ssrPath + " HTTP/1.1\r\n Impersonate-User: kip-admin\r\nHost: kip\r\nContent-Type: application/json\r\n" +
				auth + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body,
			want: []int{http.StatusBadRequest}, closed: true},
		{name: "whitespace before the colon",
			data: ssrRequest(auth+"Impersonate-User : kip-admin\r\n", body),
			want: []int{http.StatusBadRequest}, closed: true},
		{name: "tab before the colon",
			data: ssrRequest(auth+"Impersonate-Group\t: system:masters\r\n", body),
			want: []int{http.StatusBadRequest}, closed: true},
		{name: "oversized header block",
			data: ssrRequest(auth+"X-Big: "+big+"\r\n", body),
			want: []int{http.StatusRequestHeaderFieldsTooLarge}, closed: true},
		{name: "the token only in a chunked trailer",
			data: rawPOST("Trailer: Authorization\r\nTransfer-Encoding: chunked\r\n", httpChunk(body)+"0\r\n"+auth+"\r\n"),
			want: []int{http.StatusUnauthorized}},
		{name: "impersonation and a token in a chunked trailer beside a certificate", cert: true,
			data: rawPOST("Trailer: Impersonate-User, Impersonate-Group, Authorization\r\nTransfer-Encoding: chunked\r\n",
				httpChunk(body)+"0\r\nImpersonate-User: kip-admin\r\nImpersonate-Group: system:masters\r\n"+auth+"\r\n"),
			want: []int{http.StatusCreated}},
		{name: "absolute-form target naming another server", cert: true,
			data: strings.Replace(ssrRequest("", body), "POST "+ssrPath, "POST https://127.0.0.1:1"+ssrPath, 1),
			want: []int{http.StatusCreated}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			who, connAuth := saUser, auth
			var c *rawConn
			if tt.cert {
				who, connAuth = caller, ""
				c = dialKip(t, cert)
			} else {
				c = dialKip(t, nil)
			}
			c.send(tt.data)
			for i, code := range tt.want {
				res, err := c.next()
				if err != nil {
					t.Fatalf("answer %d: kip closed the connection (%v), want %d", i+1, err, code)
				}
				if err := checkAnswer(res, code, who); err != nil {
					t.Fatalf("answer %d: %v", i+1, err)
				}
			}
			c.closedOrProbe(t, tt.closed, connAuth, who)
		})
	}
}

// clteRequest is a SelfSubjectReview with the framing headers in framing
// (a format whose %d, if any, is the Content-Length that covers both the
// chunked body and what follows it), then trailing right after.
func clteRequest(auth, framing, chunked, trailing string) string {
	if strings.Contains(framing, "%d") {
		framing = fmt.Sprintf(framing, len(chunked)+len(trailing))
	}
	return rawPOST(auth+framing, chunked+trailing)
}

// rawPOST is a SelfSubjectReview POST whose framing headers are in head.
func rawPOST(head, rest string) string {
	return "POST " + ssrPath + " HTTP/1.1\r\nHost: kip\r\nContent-Type: application/json\r\n" + head + "\r\n" + rest
}

// checkAnswer checks one answer read off a raw connection: a 201 must be a
// SelfSubjectReview naming who; a 401 comes from kip's chain and must be
// a metav1.Status. 400, 431 and 501 are Go's server
// refusing the framing before kip's handler runs, in plain text.
func checkAnswer(res rawResponse, code int, who string) error {
	switch code {
	case http.StatusCreated:
		return checkServedAs(res, who)
	case http.StatusUnauthorized:
		_, err := rawStatus(res, code)
		return err
	}
	if res.code != code {
		return fmt.Errorf("got %d, want %d: %.300s", res.code, code, res.body)
	}
	return nil
}

// h2Conn is one raw HTTP/2 connection to kip: the test writes HEADERS and
// DATA frames itself, so it can send what Go's client refuses to.
type h2Conn struct {
	conn *tls.Conn
	fr   *http2.Framer
}

// dialKipH2 opens a raw HTTP/2 connection to kip that presents cert.
func dialKipH2(t *testing.T, cert *tls.Certificate) *h2Conn {
	t.Helper()
	cfg := &tls.Config{RootCAs: kipRoots(t), NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }}
	conn, err := tls.Dial("tcp", strings.TrimPrefix(stack.KipURL, "https://"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if conn.ConnectionState().NegotiatedProtocol != "h2" {
		t.Fatalf("kip did not agree to HTTP/2: %q", conn.ConnectionState().NegotiatedProtocol)
	}
	_ = conn.SetDeadline(time.Now().Add(time.Minute)) // liveness only
	fr, err := rawh2.Start(conn)
	if err != nil {
		t.Fatal(err)
	}
	return &h2Conn{conn: conn, fr: fr}
}

// send writes one request on stream id: fields exactly as given (names not
// lower-cased, nothing dropped), then body.
func (c *h2Conn) send(t *testing.T, id uint32, fields [][2]string, body string) {
	t.Helper()
	if err := rawh2.Send(c.fr, id, fields, body); err != nil {
		t.Fatal(err)
	}
}

// answer reads stream id's answer, its reset, or the end of the whole
// connection, answering the peer's SETTINGS and PINGs.
func (c *h2Conn) answer(t *testing.T, id uint32) rawh2.Answer {
	t.Helper()
	a, err := rawh2.Reader{Framer: c.fr}.Answer(id)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// h2Review is a SelfSubjectReview on kip, as HTTP/2 fields, with extra
// fields after the pseudo-headers.
func h2Review(extra ...[2]string) [][2]string {
	fields := [][2]string{
		{":method", http.MethodPost}, {":scheme", "https"}, {":authority", "kip"}, {":path", ssrPath},
		{"content-type", "application/json"},
	}
	return append(fields, extra...)
}

// TestAdversarialHTTP2Framing sends, on raw HTTP/2 streams, what HTTP/2
// forbids and Go's client never sends: upper-case field names, the
// connection-specific fields (Connection, Transfer-Encoding, Upgrade,
// Keep-Alive), CR or LF inside a value (which an HTTP/1.1 hop would read as
// a new header line), a repeated pseudo-header. Go's server resets each such
// stream with PROTOCOL_ERROR before kip's handler runs, so nothing of it is
// forwarded. The connection survives: a well-formed request on the next
// stream is served as the caller, and is the only answer.
func TestAdversarialHTTP2Framing(t *testing.T) {
	caller := harness.UniqueName("adv-h2")
	cert := rawUserCert(t, caller)
	// Go's server resets a stream whose fields are malformed, and answers
	// 400 (in plain text) to one that carries a connection-specific field.
	const reset, badRequest = 0, http.StatusBadRequest
	tests := []struct {
		name   string
		fields [][2]string
		want   int
	}{
		{"upper-case Impersonate-User name", h2Review([2]string{"Impersonate-User", "kip-admin"}), reset},
		{"upper-case Authorization name", h2Review([2]string{"Authorization", "Bearer garbage"}), reset},
		{"CR LF inside a value hiding Impersonate-User", h2Review([2]string{"x-note", "a\r\nImpersonate-User: kip-admin"}), reset},
		{"LF inside a value hiding Impersonate-Group", h2Review([2]string{"x-note", "a\nImpersonate-Group: system:masters"}), reset},
		{"NUL inside a value", h2Review([2]string{"x-note", "a\x00b"}), reset},
		{"space inside a field name", h2Review([2]string{"impersonate-user ", "kip-admin"}), reset},
		{"second :path", h2Review([2]string{":path", "/api/v1/namespaces/kube-system/secrets"}), reset},
		{"pseudo-header after a regular field", append(h2Review(), [2]string{":authority", "elsewhere"}), reset},
		{"connection naming impersonate-user", h2Review([2]string{"connection", "impersonate-user"}, [2]string{"impersonate-user", "kip-admin"}), badRequest},
		{"transfer-encoding: chunked", h2Review([2]string{"transfer-encoding", "chunked"}), badRequest},
		{"upgrade: websocket", h2Review([2]string{"upgrade", "websocket"}), badRequest},
		{"keep-alive", h2Review([2]string{"keep-alive", "timeout=5"}), badRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialKipH2(t, cert)
			// No DATA after a refused HEADERS: it would be DATA on a stream
			// the server never opened, and cost the connection.
			c.send(t, 1, tt.fields, "")
			first := c.answer(t, 1)
			switch {
			case first.Closed():
				t.Fatalf("stream 1: %v, want the stream alone refused", first)
			case tt.want == reset && (!first.Reset || first.ResetCode != http2.ErrCodeProtocol):
				t.Fatalf("stream 1: %v, want RST_STREAM PROTOCOL_ERROR", first)
			case tt.want == badRequest && (first.Reset || first.Status != badRequest):
				t.Fatalf("stream 1: %v, want Go's 400", first)
			}
			c.send(t, 3, h2Review([2]string{"content-length", strconv.Itoa(len(ssrBody))}), ssrBody)
			second := c.answer(t, 3)
			if second.Closed() || second.Reset {
				t.Fatalf("stream 3, well formed: %v", second)
			}
			if err := checkServedAs(rawResponse{code: second.Status, body: second.Body}, caller); err != nil {
				t.Fatalf("stream 3: %v", err)
			}
			if err := noMoreH2Answers(c); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// noMoreH2Answers closes the connection politely and checks that no other
// stream gets headers or data before kip closes too.
func noMoreH2Answers(c *h2Conn) error {
	if err := c.fr.WriteGoAway(3, http2.ErrCodeNo, nil); err != nil {
		return nil // kip closed first: nothing more can come
	}
	_ = c.conn.CloseWrite()
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return nil // closed
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			return fmt.Errorf("an answer on stream %d that nobody asked for", f.StreamID)
		case *http2.DataFrame:
			if len(f.Data()) > 0 {
				return fmt.Errorf("data on stream %d after the last answer: %.300s", f.StreamID, f.Data())
			}
		case *http2.GoAwayFrame:
			return nil
		}
	}
}
