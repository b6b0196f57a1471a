package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kip-proxy/kip/internal/rig/harness"
	"github.com/kip-proxy/kip/internal/rig/rawh2"
)

// headerLimit is the request header size kip accepts: the generic
// server's http.Server.MaxHeaderBytes. net/http reads up to 4 KiB more
// before it refuses, and counts the request line too.
const headerLimit = 1 << 20

// TestRequestHeaderSizeLimit sends requests whose headers come close to
// and go past 1 MiB, over HTTP/1.1 and HTTP/2, to the shared kip: below the
// limit kip serves them; above it net/http refuses them before any of
// kip's handlers runs, with 431 or, for an HTTP/2 client that goes on
// sending CONTINUATION frames past the limit, by closing the connection
// with PROTOCOL_ERROR; and kip serves the next request as before.
func TestRequestHeaderSizeLimit(t *testing.T) {
	user := harness.UniqueName("big-headers")
	grantCluster(t, userSubject(user), rbacv1.PolicyRule{
		APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get"},
	})
	cert := rawUserCert(t, user)
	addr := strings.TrimPrefix(stack.KipURL, "https://")
	normal := rawClient(t, rawHTTP2, cert)
	for _, tc := range []struct {
		name   string
		proto  rawProto
		header []rawHeader
		want   int
	}{
		{"HTTP/1.1, one 512 KiB header", rawHTTP1, headersOf(1, 512<<10), http.StatusOK},
		{"HTTP/1.1, 1000 headers of 900 bytes", rawHTTP1, headersOf(1000, 900), http.StatusOK},
		{"HTTP/1.1, 1 MiB less 1 KiB of headers", rawHTTP1, headersOf(1, headerLimit-1<<10), http.StatusOK},
		// net/http reads 4 KiB past MaxHeaderBytes, so kip takes this
		// request in, but the upstream's HTTP/2 limit has no such slack:
		// the caller sent too much, and the answer must say so.
		{"HTTP/1.1, 1 MiB plus 2 KiB of headers, inside net/http's slack", rawHTTP1, headersOf(1, headerLimit+2<<10), http.StatusRequestHeaderFieldsTooLarge},
		{"HTTP/1.1, one header of the limit plus 8 KiB", rawHTTP1, headersOf(1, headerLimit+8<<10), http.StatusRequestHeaderFieldsTooLarge},
		{"HTTP/1.1, 300 headers of 8 KiB", rawHTTP1, headersOf(300, 8<<10), http.StatusRequestHeaderFieldsTooLarge},
		{"HTTP/1.1, 16 MiB of headers", rawHTTP1, headersOf(2048, 8<<10), http.StatusRequestHeaderFieldsTooLarge},
		{"HTTP/2, 1000 headers of 900 bytes", rawHTTP2, headersOf(1000, 900), http.StatusOK},
		{"HTTP/2, past the limit in the last frame", rawHTTP2, justPastHTTP2Limit(addr), http.StatusRequestHeaderFieldsTooLarge},
		{"HTTP/2, 2.4 MiB of headers", rawHTTP2, headersOf(300, 8<<10), connectionRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var code int
			var body []byte
			var err error
			if tc.proto == rawHTTP1 {
				code, body, err = http1RawGet(addr, cert, tc.header)
			} else {
				code, body, err = http2RawGet(addr, cert, tc.header)
			}
			if err != nil {
				t.Fatal(err)
			}
			if code != tc.want {
				t.Errorf("got %d, want %d: %.300s", code, tc.want, body)
			}
			t.Logf("%d %.120q", code, body)
			if err := responsive(normal, stack.KipURL+"/api/v1/namespaces/default"); err != nil {
				t.Fatalf("after the request: %v", err)
			}
		})
	}
}

// connectionRefused stands for an HTTP/2 connection closed with
// PROTOCOL_ERROR instead of an answer.
const connectionRefused = -1

// http2HeaderListLimit is the HTTP/2 header list size kip's server accepts:
// net/http's MaxHeaderBytes padded by golang.org/x/net/http2 for ten
// fields of 32 bytes' overhead. Each field counts its name, its value and
// 32 bytes.
const http2HeaderListLimit = headerLimit + 10*32

// justPastHTTP2Limit is headers whose list size, with the request's own
// fields, stays 4000 bytes below the limit but for the last one, which
// goes 2000 bytes past it.
func justPastHTTP2Limit(addr string) []rawHeader {
	size := 0
	for _, f := range http2BaseFields(addr) {
		size += int(f.Size())
	}
	var h []rawHeader
	for i := 0; size < http2HeaderListLimit-4000; i++ {
		name := "x-big-" + strconv.Itoa(i)
		value := strings.Repeat("v", min(8<<10, http2HeaderListLimit-4000-size-len(name)-32))
		h = append(h, rawHeader{name: name, value: value})
		size += len(name) + len(value) + 32
	}
	last := "x-last"
	return append(h, rawHeader{name: last, value: strings.Repeat("v", http2HeaderListLimit-size+2000-len(last)-32)})
}

// headersOf is n headers X-Big-<i> whose values are size bytes each.
func headersOf(n, size int) []rawHeader {
	value := strings.Repeat("v", size)
	h := make([]rawHeader, n)
	for i := range h {
		h[i] = rawHeader{name: "X-Big-" + strconv.Itoa(i), value: value}
	}
	return h
}

// http1RawGet writes GET /api/v1/namespaces/default with headers straight
// to a TLS connection, so that no client library judges their size, and
// returns kip's answer.
func http1RawGet(addr string, cert *tls.Certificate, headers []rawHeader) (int, []byte, error) {
	conn, err := tls.Dial("tcp", addr, kipTLSConfig(cert, "http/1.1"))
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	var req bytes.Buffer
	req.WriteString("GET /api/v1/namespaces/default HTTP/1.1\r\nHost: " + addr + "\r\nAccept: application/json\r\n")
	for _, h := range headers {
		req.WriteString(h.name + ": " + h.value + "\r\n")
	}
	req.WriteString("\r\n")
	// kip may answer and close before it has read everything; the answer
	// is what counts, so a failed write is not the end.
	go func() { _, _ = conn.Write(req.Bytes()) }()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, nil, fmt.Errorf("reading kip's answer: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// http2RawGet sends the same request over HTTP/2 with a framer of its own:
// Go's HTTP/2 client refuses to send more headers than the server
// announced it accepts, and the point is what kip does when a client does
// not hold back. The last header goes in a frame of its own. A connection
// closed with PROTOCOL_ERROR comes back as code connectionRefused.
func http2RawGet(addr string, cert *tls.Certificate, headers []rawHeader) (int, []byte, error) {
	conn, err := tls.Dial("tcp", addr, kipTLSConfig(cert, "h2"))
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	fr, err := rawh2.Start(conn)
	if err != nil {
		return 0, nil, err
	}
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range http2BaseFields(addr) {
		_ = enc.WriteField(f)
	}
	for _, h := range headers[:len(headers)-1] {
		_ = enc.WriteField(hpack.HeaderField{Name: strings.ToLower(h.name), Value: h.value})
	}
	split := block.Len()
	last := headers[len(headers)-1]
	_ = enc.WriteField(hpack.HeaderField{Name: strings.ToLower(last.name), Value: last.value})
	// Only this goroutine writes, so the reader below writes nothing: a
	// framer's writes are not safe for concurrent use.
	go func() { _ = writeHeaderBlock(fr, block.Bytes(), split) }()
	a, err := rawh2.Reader{Framer: fr, Silent: true}.Answer(1)
	switch {
	case err != nil:
		return 0, nil, err
	case a.Closed() && a.GoAway.Code == http2.ErrCodeProtocol:
		return connectionRefused, nil, nil
	case a.Closed() || a.Reset:
		return 0, nil, fmt.Errorf("kip's answer: %v", a)
	}
	return a.Status, a.Body, nil
}

// http2BaseFields are the request's own fields: GET /api/v1/namespaces/default.
func http2BaseFields(addr string) []hpack.HeaderField {
	return []hpack.HeaderField{
		{Name: ":method", Value: http.MethodGet}, {Name: ":scheme", Value: "https"},
		{Name: ":authority", Value: addr}, {Name: ":path", Value: "/api/v1/namespaces/default"},
		{Name: "accept", Value: "application/json"},
	}
}

// writeHeaderBlock sends block as a HEADERS frame and CONTINUATION frames,
// each within the default 16 KiB frame size, with the bytes from split on
// in a last frame of their own.
func writeHeaderBlock(fr *http2.Framer, block []byte, split int) error {
	const frame = 16 << 10
	var frags [][]byte
	for rest := block[:split]; len(rest) > 0; rest = rest[min(frame, len(rest)):] {
		frags = append(frags, rest[:min(frame, len(rest))])
	}
	frags = append(frags, block[split:])
	for i, frag := range frags {
		end := i == len(frags)-1
		var err error
		if i == 0 {
			err = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: frag, EndStream: true, EndHeaders: end})
		} else {
			err = fr.WriteContinuation(1, end, frag)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// kipTLSConfig trusts kip's serving certificate, offers protos and
// presents cert, when given.
func kipTLSConfig(cert *tls.Certificate, protos ...string) *tls.Config {
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(stack.KipCAPEM)
	cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12, NextProtos: protos}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return cfg
}

// TestInFlightLimits runs kip with --max-requests-inflight=1 and
// --max-mutating-requests-inflight=1 and holds each slot with a request
// that does not end: a POST whose body never finishes, a LIST whose answer
// is never read. A second request of the same kind gets 429 with
// Retry-After; the other kind, a watch (long-running requests are exempt)
// and a system:masters caller (exempt, as in kube-apiserver) are served;
// once the slot is free, the refused request is served.
func TestInFlightLimits(t *testing.T) {
	ns := createNamespace(t)
	user := harness.UniqueName("limited")
	grant(t, ns, userSubject(user), configMapRules...)
	// About 8 MB: more than the kernel's socket buffers hold, so a LIST
	// that is not read stays in flight.
	createBigConfigMaps(t, ns, 10, 800<<10)
	kipURL := harness.StartInProcess(t, stack, "--max-requests-inflight=1", "--max-mutating-requests-inflight=1")
	addr := strings.TrimPrefix(kipURL, "https://")
	cert := rawUserCert(t, user)
	client := rawClient(t, rawHTTP2, cert)
	masters := rawClient(t, rawHTTP2, rawUserCert(t, harness.UniqueName("admin"), "system:masters"))
	list := "/api/v1/namespaces/" + ns + "/configmaps"
	get := list + "/big-000"
	create := rawRequest{method: http.MethodPost, path: list, body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"generateName":"second-"}}`}

	t.Run("mutating", func(t *testing.T) {
		held := holdSlowPOST(t, addr, list, cert)
		harness.Eventually(t, 30*time.Second, func() error { return wantThrottled(t, client, kipURL, create) })
		for _, c := range []struct {
			what   string
			client *http.Client
			req    rawRequest
		}{
			{"a GET, which counts against the other limit", client, rawRequest{path: get}},
			{"a watch, long-running and exempt", client, rawRequest{path: list + "?watch=true&timeoutSeconds=1"}},
			{"a POST by a system:masters caller", masters, create},
		} {
			if res := kipDo(t, c.client, kipURL, c.req); res.code >= 300 {
				t.Errorf("%s while the mutating slot is held: %d %s", c.what, res.code, res.body)
			}
		}
		_ = held.Close()
		harness.Eventually(t, 30*time.Second, func() error { return kipWant(client, kipURL, create, http.StatusCreated) })
	})

	t.Run("read-only", func(t *testing.T) {
		held := holdUnreadLIST(t, addr, list, cert)
		harness.Eventually(t, 30*time.Second, func() error { return wantThrottled(t, client, kipURL, rawRequest{path: get}) })
		if res := kipDo(t, client, kipURL, create); res.code != http.StatusCreated {
			t.Errorf("a POST, which counts against the other limit, while the read-only slot is held: %d %s", res.code, res.body)
		}
		if res := kipDo(t, masters, kipURL, rawRequest{path: get}); res.code != http.StatusOK {
			t.Errorf("a GET by a system:masters caller while the read-only slot is held: %d %s", res.code, res.body)
		}
		_ = held.Close()
		harness.Eventually(t, 30*time.Second, func() error { return kipWant(client, kipURL, rawRequest{path: get}, http.StatusOK) })
	})
}

// wantThrottled reports an error unless req gets kip's 429 with
// Retry-After. Once it does, it checks that the answer is a metav1.Status,
// as every error kip gives is.
func wantThrottled(t *testing.T, client *http.Client, kipURL string, req rawRequest) error {
	t.Helper()
	res, header := kipDoHeader(t, client, kipURL, req)
	if res.code != http.StatusTooManyRequests {
		return fmt.Errorf("%s %s: got %d, want 429: %.200s", req.method, req.path, res.code, res.body)
	}
	if header.Get("Retry-After") == "" {
		t.Errorf("429 without Retry-After: %v", header)
	}
	if req.method == "" {
		req.method = http.MethodGet
	}
	t.Logf("%s %s: 429, Retry-After %s, Content-Type %q: %q", req.method, req.path, header.Get("Retry-After"), header.Get("Content-Type"), res.body)
	var st metav1.Status
	if err := json.Unmarshal(res.body, &st); err != nil || st.Kind != "Status" || st.Code != http.StatusTooManyRequests {
		t.Errorf("kip's 429 is not a metav1.Status (generic filter WithMaxInFlightLimit writes plain text): %q", res.body)
	}
	return nil
}

// kipDo sends req to the kip at kipURL; code 0 means no answer.
func kipDo(t *testing.T, client *http.Client, kipURL string, req rawRequest) rawResponse {
	t.Helper()
	res, _ := kipDoHeader(t, client, kipURL, req)
	return res
}

func kipDoHeader(t *testing.T, client *http.Client, kipURL string, req rawRequest) (rawResponse, http.Header) {
	t.Helper()
	method := req.method
	if method == "" {
		method = http.MethodGet
	}
	hr, err := http.NewRequest(method, kipURL+req.path, strings.NewReader(req.body))
	if err != nil {
		t.Fatal(err)
	}
	hr.Header.Set("Accept", "application/json")
	hr.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(hr)
	if err != nil {
		t.Fatalf("%s %s: %v", method, req.path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	return rawResponse{code: resp.StatusCode, body: body}, resp.Header
}

func kipWant(client *http.Client, kipURL string, req rawRequest, code int) error {
	method := req.method
	if method == "" {
		method = http.MethodGet
	}
	hr, err := http.NewRequest(method, kipURL+req.path, strings.NewReader(req.body))
	if err != nil {
		return err
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(hr)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != code {
		return fmt.Errorf("%s %s: got %d, want %d: %.200s", method, req.path, resp.StatusCode, code, body)
	}
	return nil
}

// holdSlowPOST starts creating a ConfigMap whose body is announced but
// sent only in part: kip's handler, and its mutating slot, wait for the
// rest until the connection closes.
func holdSlowPOST(t *testing.T, addr, path string, cert *tls.Certificate) net.Conn {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, kipTLSConfig(cert, "http/1.1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	body := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"generateName":"slow-"}}`
	head := "POST " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
	if _, err := io.WriteString(conn, head+body[:len(body)/2]); err != nil {
		t.Fatal(err)
	}
	return conn
}

// holdUnreadLIST starts a LIST of several megabytes over a connection with
// a small receive buffer and never reads the answer: kip's handler, and
// its read-only slot, wait to write until the connection closes.
func holdUnreadLIST(t *testing.T, addr, path string, cert *tls.Certificate) net.Conn {
	t.Helper()
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	raw, err := dialer.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = raw.(*net.TCPConn).SetReadBuffer(4 << 10)
	cfg := kipTLSConfig(cert, "http/1.1")
	cfg.ServerName = "127.0.0.1"
	conn := tls.Client(raw, cfg)
	t.Cleanup(func() { _ = conn.Close() })
	if _, err := io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: "+addr+"\r\nAccept: application/json\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// Read only the status line, to know the LIST took the slot rather
	// than met another request holding it; the body stays unread.
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	status, err := bufio.NewReaderSize(conn, 16).ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "HTTP/1.1 200") {
		t.Fatalf("the LIST meant to hold the read-only slot got %q (%v)", status, err)
	}
	return conn
}

// TestUpstreamFlowSchemaSeesImpersonatedUser shows where a request through
// kip lands in the upstream's API Priority and Fairness: kube-apiserver
// classifies it after impersonation, so by the user kip impersonates, not
// by kip's own account. A FlowSchema that matches one user by name must
// classify that user's requests through kip, and only that user's.
func TestUpstreamFlowSchemaSeesImpersonatedUser(t *testing.T) {
	user, other := harness.UniqueName("apf"), harness.UniqueName("apf-other")
	for _, u := range []string{user, other} {
		grantCluster(t, userSubject(u), rbacv1.PolicyRule{
			APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get"},
		})
	}
	admin := adminClient(t)
	ctx := context.Background()
	fs, err := admin.FlowcontrolV1().FlowSchemas().Create(ctx, &flowcontrolv1.FlowSchema{
		ObjectMeta: metav1.ObjectMeta{Name: harness.UniqueName("kip-test")},
		Spec: flowcontrolv1.FlowSchemaSpec{
			PriorityLevelConfiguration: flowcontrolv1.PriorityLevelConfigurationReference{Name: "workload-low"},
			MatchingPrecedence:         100,
			DistinguisherMethod:        &flowcontrolv1.FlowDistinguisherMethod{Type: flowcontrolv1.FlowDistinguisherMethodByUserType},
			Rules: []flowcontrolv1.PolicyRulesWithSubjects{{
				Subjects: []flowcontrolv1.Subject{{Kind: flowcontrolv1.SubjectKindUser, User: &flowcontrolv1.UserSubject{Name: user}}},
				ResourceRules: []flowcontrolv1.ResourcePolicyRule{{
					Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}, ClusterScope: true, Namespaces: []string{"*"},
				}},
			}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = admin.FlowcontrolV1().FlowSchemas().Delete(context.Background(), fs.Name, metav1.DeleteOptions{})
	})

	path := "/api/v1/namespaces/default"
	mine := rawClient(t, rawHTTP2, rawUserCert(t, user))
	theirs := rawClient(t, rawHTTP2, rawUserCert(t, other))
	// The upstream's APF configuration controller takes the new schema up
	// in the background.
	harness.Eventually(t, 30*time.Second, func() error {
		if got := flowSchemaUID(t, mine, path); got != string(fs.UID) {
			return fmt.Errorf("%s's request through kip was classified by FlowSchema %s, want %s (%s)", user, got, fs.UID, fs.Name)
		}
		return nil
	})
	if got := flowSchemaUID(t, theirs, path); got == string(fs.UID) || got == "" {
		t.Errorf("%s's request through kip was classified by FlowSchema %q, want another one than %s's", other, got, user)
	}
	schemas, err := admin.FlowcontrolV1().FlowSchemas().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	for _, s := range schemas.Items {
		names[string(s.UID)] = s.Name
	}
	t.Logf("through kip, %s lands in FlowSchema %s; %s in %s", user, fs.Name, other, names[flowSchemaUID(t, theirs, path)])
}

// flowSchemaUID is the upstream's X-Kubernetes-PF-FlowSchema-UID for a GET
// of path through the shared kip.
func flowSchemaUID(t *testing.T, client *http.Client, path string) string {
	t.Helper()
	resp, err := client.Get(stack.KipURL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s through kip: %s", path, resp.Status)
	}
	return resp.Header.Get("X-Kubernetes-PF-FlowSchema-UID")
}

// TestUnreadAnswerGivesItsSlotBack: a LIST whose answer the client never
// reads holds kip's only read-only slot; once --request-timeout has passed,
// the slot must be free again, or --max-requests-inflight such clients
// (400 by default) would lock every read-only request of every user out of
// kip for as long as they keep their connections open.
func TestUnreadAnswerGivesItsSlotBack(t *testing.T) {
	ns := createNamespace(t)
	user := harness.UniqueName("unread-list")
	grant(t, ns, userSubject(user), configMapRules...)
	createBigConfigMaps(t, ns, 10, 800<<10)
	kipURL := harness.StartInProcess(t, stack, "--max-requests-inflight=1", "--request-timeout=3s")
	addr := strings.TrimPrefix(kipURL, "https://")
	cert := rawUserCert(t, user)
	client := rawClient(t, rawHTTP2, cert)
	list := "/api/v1/namespaces/" + ns + "/configmaps"
	get := rawRequest{path: list + "/big-000"}

	held := holdUnreadLIST(t, addr, list, cert)
	defer func() { _ = held.Close() }()
	harness.Eventually(t, 30*time.Second, func() error {
		if res := kipDo(t, client, kipURL, get); res.code != http.StatusTooManyRequests {
			return fmt.Errorf("got %d, want 429 while the slot is held", res.code)
		}
		return nil
	})
	start := time.Now()
	// Generous beside the 3 s timeout; today the slot stays taken until
	// the client closes its connection.
	harness.Eventually(t, 20*time.Second, func() error { return kipWant(client, kipURL, get, http.StatusOK) })
	t.Logf("served again %v after the slot was first seen held", time.Since(start).Round(time.Millisecond))
}
