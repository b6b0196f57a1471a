package identity

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kipexchange "github.com/kip-proxy/kip/internal/exchange"
	"github.com/kip-proxy/kip/internal/rig/harness"
	"github.com/kip-proxy/kip/internal/rig/rawh2"
	loginv1alpha1 "github.com/kip-proxy/kip/pkg/apis/login/v1alpha1"
)

// exchangePathCase is one request target sent to kip as it is.
type exchangePathCase struct {
	name, target string
	http1Only    bool // an absolute-form target, which HTTP/2's :path cannot carry
	exchange     bool // the exchange answers it
}

// exchangePathCases are internal/exchange TestWithExchange's targets, and
// a few more that only a raw connection can send.
func exchangePathCases() []exchangePathCase {
	p := kipexchange.Path
	group := "/apis/" + loginv1alpha1.GroupName + "/v1alpha1"
	return []exchangePathCase{
		{name: "the path", target: p, exchange: true},
		{name: "with a query", target: p + "?timeout=10s", exchange: true},
		{name: "with an empty query", target: p + "?", exchange: true},
		{name: "with a query that looks like a path", target: p + "?/../../api/v1/secrets", exchange: true},
		{name: "absolute form", target: "https://kip.test" + p, http1Only: true, exchange: true},

		{name: "trailing slash", target: p + "/"},
		{name: "sub-path", target: p + "/x"},
		{name: "named object", target: p + "/login"},
		{name: "status subresource", target: p + "/login/status"},
		{name: "longer name", target: p + "x"},
		{name: "prefix only", target: group + "/tokencredential"},
		{name: "group discovery", target: group},
		{name: "namespaced", target: group + "/namespaces/default/tokencredentialrequests"},
		{name: "dot-dot into the path", target: group + "/x/../tokencredentialrequests"},
		{name: "dot-dot out of the path", target: p + "/../../../../api/v1/secrets"},
		{name: "dot segment", target: group + "/./tokencredentialrequests"},
		{name: "double slash", target: "/" + p},
		{name: "double slash inside", target: "/apis/" + loginv1alpha1.GroupName + "//v1alpha1/tokencredentialrequests"},
		{name: "encoded slash", target: "/apis/" + loginv1alpha1.GroupName + "%2Fv1alpha1/tokencredentialrequests"},
		{name: "encoded letter", target: group + "/%74okencredentialrequests"},
		{name: "encoded trailing slash", target: p + "%2F"},
		{name: "encoded dot-dot", target: group + "/x/%2e%2e/tokencredentialrequests"},
		{name: "encoded dot-dot, upper case", target: group + "/x/%2E%2E/tokencredentialrequests"},
		{name: "encoded question mark", target: p + "%3Ftimeout=10s"},
		{name: "encoded NUL", target: p + "%00"},
		{name: "fragment", target: p + "#x"},
		{name: "upper case", target: strings.ToUpper(p)},
		{name: "semicolon parameter", target: p + ";x=y"},
		{name: "other group", target: "/apis/authentication.k8s.io/v1/tokenreviews"},
		{name: "core API", target: "/api/v1/namespaces/default/secrets"},
		{name: "root", target: "/"},
		{name: "absolute form of a look-alike", target: "https://kip.test" + p + "/", http1Only: true},
	}
}

// TestExchangeLookAlikePathsEndToEnd posts a good exchange request (a
// token the webhook accepts) with no credential of its own to a running
// kip, over raw HTTP/1.1 and raw HTTP/2 connections, so that each target
// arrives exactly as written: Go's client would clean or re-encode it.
//
// Verdict, as internal/exchange TestWithExchange says: only the exact
// path (with any query, or in absolute form) reaches the exchange, which
// answers 201 with a certificate. Every look-alike (trailing or doubled
// slash, sub-path, dot segments, percent-encoded slashes, dots, letters,
// '?' or NUL, a fragment, another letter case, a ';' parameter) gets
// kip's 401 Status from authentication, and the upstream's audit log shows
// none of them, so none was forwarded. kube-apiserver has no exchange:
// sent the same requests directly, it refuses every one (403 to
// system:anonymous, or 401), as kip refuses the look-alikes.
func TestExchangeLookAlikePathsEndToEnd(t *testing.T) {
	body := requestJSON(t, webhookToken, nil)
	agent := harness.UniqueName("look-alike")
	for _, proto := range []string{"HTTP/1.1", "HTTP/2"} {
		t.Run(proto, func(t *testing.T) {
			for _, tc := range exchangePathCases() {
				if tc.http1Only && proto == "HTTP/2" {
					continue
				}
				t.Run(tc.name, func(t *testing.T) {
					send := postRawHTTP1
					if proto == "HTTP/2" {
						send = postRawHTTP2
					}
					code, got := send(t, tc.target, agent, body)
					checkLookAlike(t, tc, code, got)
				})
			}
		})
	}
	checkNoneForwarded(t, agent)
	t.Run("kube-apiserver directly", func(t *testing.T) {
		codes := map[int]int{}
		for _, tc := range exchangePathCases() {
			conn := dialTLS(t, env.stack.Cluster.URL, upstreamTLS(t, "http/1.1"))
			code, got := postRawHTTP1To(t, conn, tc.target, agent+"-direct", body)
			if code != http.StatusUnauthorized && code != http.StatusForbidden {
				t.Errorf("%s: kube-apiserver answered an anonymous caller %d, want 401 or 403: %.300q", tc.name, code, got)
			}
			codes[code]++
		}
		t.Logf("kube-apiserver's answers to the %d targets, anonymous: %v", len(exchangePathCases()), codes)
	})
}

// checkLookAlike insists on the exchange's certificate or kip's 401.
func checkLookAlike(t *testing.T, tc exchangePathCase, code int, body []byte) {
	t.Helper()
	if tc.exchange {
		out := rawAnswer{code: code, body: body}.answer(t)
		if out.Status.Credential == nil {
			t.Fatalf("the exchange gave no certificate: %q", body)
		}
		return
	}
	if bytes.Contains(body, []byte("clientCertificateData")) {
		t.Fatalf("a look-alike reached the exchange: %d %.300q", code, body)
	}
	s := rawAnswer{code: code, body: body}.status(t)
	if code != http.StatusUnauthorized || s.Reason != metav1.StatusReasonUnauthorized {
		t.Fatalf("got %d %s, want kip's 401: %.300q", code, s.Reason, body)
	}
}

// checkNoneForwarded fails if the upstream's audit log names agent: it
// would have received an anonymous request from kip. A request that kip
// does forward, from an exchanged certificate with the same agent, shows
// that the log would have shown one.
func checkNoneForwarded(t *testing.T, agent string) {
	t.Helper()
	cred := mustExchange(t, webhookToken, nil)
	cfg := certConfig([]byte(cred.ClientCertificateData), []byte(cred.ClientKeyData))
	cfg.UserAgent = agent + "-control"
	if _, err := whoami(t, cfg); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 30*time.Second, func() error {
		data, err := os.ReadFile(env.auditLog)
		if err != nil {
			return err
		}
		if !bytes.Contains(data, []byte(agent+"-control")) {
			return fmt.Errorf("the upstream's audit log does not show the control request yet")
		}
		if bytes.Contains(data, []byte(`"userAgent":"`+agent+`"`)) {
			t.Fatalf("the upstream's audit log shows a look-alike request: kip forwarded it")
		}
		return nil
	})
}

// kipTLS trusts kip's serving certificate and offers proto.
func kipTLS(t *testing.T, proto string) *tls.Config {
	t.Helper()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(env.stack.KipCAPEM) {
		t.Fatal("kip's serving CA is not valid PEM")
	}
	return &tls.Config{RootCAs: roots, NextProtos: []string{proto}, MinVersion: tls.VersionTLS12}
}

// upstreamTLS trusts kube-apiserver's serving certificate and offers
// proto.
func upstreamTLS(t *testing.T, proto string) *tls.Config {
	t.Helper()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(env.stack.Cluster.AdminConfig.CAData) {
		t.Fatal("the cluster's serving CA is not valid PEM")
	}
	return &tls.Config{RootCAs: roots, NextProtos: []string{proto}, MinVersion: tls.VersionTLS12}
}

// dialKip opens a TLS connection to the shared kip that agreed to proto.
func dialKip(t *testing.T, proto string) *tls.Conn {
	t.Helper()
	return dialTLS(t, env.stack.KipURL, kipTLS(t, proto))
}

// dialTLS opens a TLS connection to url that agreed to cfg's protocol.
func dialTLS(t *testing.T, url string, cfg *tls.Config) *tls.Conn {
	t.Helper()
	proto := cfg.NextProtos[0]
	conn, err := tls.Dial("tcp", strings.TrimPrefix(url, "https://"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if got := conn.ConnectionState().NegotiatedProtocol; got != proto {
		t.Fatalf("%s agreed to %q, want %q", url, got, proto)
	}
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second)) // liveness only
	return conn
}

// postRawHTTP1 writes a POST for target, byte for byte, on a new
// connection and returns kip's answer.
func postRawHTTP1(t *testing.T, target, agent, body string) (int, []byte) {
	t.Helper()
	return postRawHTTP1To(t, dialKip(t, "http/1.1"), target, agent, body)
}

// postRawHTTP1To writes a POST for target on conn and returns the answer.
func postRawHTTP1To(t *testing.T, conn *tls.Conn, target, agent, body string) (int, []byte) {
	t.Helper()
	req := "POST " + target + " HTTP/1.1\r\nHost: kip.test\r\nUser-Agent: " + agent + "\r\nContent-Type: application/json\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\nConnection: close\r\n\r\n" + body
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer from kip: %v", err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, data
}

// postRawHTTP2 sends a POST whose :path is target on stream 1 of a new
// connection and returns kip's answer.
func postRawHTTP2(t *testing.T, target, agent, body string) (int, []byte) {
	t.Helper()
	code, answer, _ := postRawHTTP2To(t, dialKip(t, "h2"), target, agent, body)
	return code, answer
}

// postRawHTTP2To is postRawHTTP2 on conn; goAway reports a GOAWAY the
// server sent while it answered. After a 401 over HTTP/2, k8s.io/apiserver's
// Unauthorized sets Connection: close (UnauthenticatedHTTP2DOSMitigation,
// as in kube-apiserver), and so does the exchange for every answer; Go's
// server turns it into a GOAWAY that still lets stream 1 finish.
func postRawHTTP2To(t *testing.T, conn *tls.Conn, target, agent, body string) (code int, answer []byte, goAway bool) {
	t.Helper()
	fr, err := rawh2.Start(conn)
	if err != nil {
		t.Fatal(err)
	}
	fields := [][2]string{
		{":method", http.MethodPost}, {":scheme", "https"}, {":authority", "kip.test"}, {":path", target},
		{"user-agent", agent}, {"content-type", "application/json"}, {"content-length", strconv.Itoa(len(body))},
	}
	if err := rawh2.Send(fr, 1, fields, body); err != nil {
		t.Fatal(err)
	}
	a, err := rawh2.Reader{Framer: fr}.Answer(1)
	if err != nil || a.Reset || a.Closed() {
		t.Fatalf("kip's answer: %v, %v", a, err)
	}
	return a.Status, a.Body, a.GoAway != nil
}

// TestExchangeEndsHTTP2Connections: a caller of the exchange is not
// authenticated. As kube-apiserver does for an anonymous caller over HTTP/2
// (UnauthenticatedHTTP2DOSMitigation), kip answers, then ends the
// connection with GOAWAY and closes it, whether it issued a certificate or
// not, so one unauthenticated connection cannot carry a stream of requests.
func TestExchangeEndsHTTP2Connections(t *testing.T) {
	agent := harness.UniqueName("h2-exchange")
	for _, tc := range []struct {
		name, url    string
		tls          func(*testing.T, string) *tls.Config
		target, body string
		issued       bool
	}{
		{name: "kube-apiserver, anonymous", url: env.stack.Cluster.URL, tls: upstreamTLS, target: "/api/v1/namespaces/default/configmaps", body: "{}"},
		{name: "kip's exchange, a refused token", url: env.stack.KipURL, tls: kipTLS, target: kipexchange.Path, body: requestJSON(t, "not-a-token", nil)},
		{name: "kip's exchange, a certificate issued", url: env.stack.KipURL, tls: kipTLS, target: kipexchange.Path, body: requestJSON(t, webhookToken, nil), issued: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := dialTLS(t, tc.url, tc.tls(t, "h2"))
			code, answer, goAway := postRawHTTP2To(t, conn, tc.target, agent, tc.body)
			switch {
			case tc.url == env.stack.Cluster.URL && code != http.StatusUnauthorized && code != http.StatusForbidden:
				t.Fatalf("kube-apiserver answered an anonymous caller %d: %.300q", code, answer)
			case tc.url == env.stack.KipURL:
				var got loginv1alpha1.TokenCredentialRequest
				if err := json.Unmarshal(answer, &got); err != nil || code != http.StatusCreated || (got.Status.Credential != nil) != tc.issued {
					t.Fatalf("the exchange answered %d (%v): %.300q", code, err, answer)
				}
			}
			if !endsAfterAnswer(t, conn, goAway) {
				t.Errorf("%s kept the connection open after answering an unauthenticated caller over HTTP/2", tc.url)
			}
		})
	}
}

// endsAfterAnswer reads what the server sends after an answer and reports
// whether it sent GOAWAY (during the answer, or after it) and then closed
// the connection, within 5 s.
func endsAfterAnswer(t *testing.T, conn *tls.Conn, goAway bool) bool {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	fr := http2.NewFramer(io.Discard, conn)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			var netErr net.Error
			if errors.As(err, &netErr) && netErr.Timeout() {
				return false
			}
			return goAway
		}
		if g, ok := f.(*http2.GoAwayFrame); ok && g.ErrCode == http2.ErrCodeNo {
			goAway = true
		}
	}
}
