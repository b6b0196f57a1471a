package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
	"k8s.io/klog/v2"
)

// FuzzNoInboundCredentialReachesUpstream sends requests carrying arbitrary
// extra headers through the proxy as a certificate user. Whatever the caller
// adds, either kip refuses with 500 before calling the upstream, or the
// upstream sees exactly the identity kip authenticated: no Authorization, no
// Impersonate-* but kip's own, no X-Remote-* or forwarding header but kip's
// X-Forwarded-For, no WebSocket bearer token.
func FuzzNoInboundCredentialReachesUpstream(f *testing.F) {
	seeds := [][4]string{
		{"Authorization", "Bearer stolen", "", ""},
		{"authorization", "Basic YWRtaW46YWRtaW4=", "", ""},
		{"impersonate-user", "system:admin", "", ""},
		{"IMPERSONATE-GROUP", "system:masters", "", ""},
		{"IMPERSONATE-EXTRA-x", "y", "", ""},
		{"Impersonate-Extra-Original-User-Info.kip.dev", `{"username":"mallory"}`, "", ""},
		{"Impersonate-Uid", "0", "", ""},
		{"X-Remote-User", "system:admin", "X-Remote-Group", "system:masters"},
		{"x-remote-extra-scopes", "all", "", ""},
		{"Connection", "Impersonate-User", "", ""},
		{"Connection", "Impersonate-User, Authorization, X-Forwarded-For", "Accept", "*/*"},
		{"Connection", "Impersonate-Group", "Connection", "Impersonate-Extra-Authentication.kubernetes.io%2Fcredential-id"},
		{"X-Forwarded-For", "6.6.6.6", "Forwarded", "for=6.6.6.6"},
		{"X-Real-Ip", "6.6.6.6", "X-Forwarded-Host", "evil.test"},
		{"Sec-WebSocket-Protocol", "base64url.bearer.authorization.k8s.io.c3RvbGVu, v5.channel.k8s.io", "", ""},
		{"Sec-WebSocket-Protocol", "v4.channel.k8s.io,BASE64URL.BEARER.AUTHORIZATION.K8S.IO.c3RvbGVu", "Sec-WebSocket-Protocol", "base64url.bearer.authorization.k8s.io.eA"},
		{"Sec-WebSocket-Protocol", "0base64url.bearer.authorization.k8s.io., v5.channel.k8s.io", "", ""},
		{"Connection", "Upgrade", "Upgrade", "SPDY/3.1"},
		{"Connection", "Upgrade, Impersonate-User", "Upgrade", "websocket"},
		{"Proxy-Authorization", "Basic eDp5", "Te", "trailers"},
		{"Accept", "application/json", "User-Agent", "kubectl/v1.37.2"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2], s[3])
	}
	// The refusals are logged as errors; at fuzzing speed that is only noise.
	klog.LogToStderr(false)
	klog.SetOutput(io.Discard)
	f.Cleanup(func() { klog.LogToStderr(true) })

	want, err := upstreamHeaders(upstreamIdentity{User: certUser})
	if err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, name1, value1, name2, value2 string) {
		req := httptest.NewRequest(http.MethodGet, "https://kip.test/api/v1/pods", nil)
		req.RemoteAddr = peer + ":54321"
		var fuzzed []string
		for _, kv := range [][2]string{{name1, value1}, {name2, value2}} {
			// Only what net/http would accept from the wire.
			if !httpguts.ValidHeaderFieldName(kv[0]) || !httpguts.ValidHeaderFieldValue(kv[1]) {
				continue
			}
			req.Header.Add(kv[0], kv[1])
			fuzzed = append(fuzzed, kv[1])
		}
		hostile := forbiddenName(req.Header)

		rt := &recordingTransport{}
		rec := httptest.NewRecorder()
		chainTo(newProxy(testUpstream, rt), certUser, false).ServeHTTP(rec, req)
		sent := rt.requests()

		if len(sent) == 0 {
			switch {
			case hostile && rec.Code == http.StatusInternalServerError:
			case !hostile && rec.Code == http.StatusBadGateway && strings.Contains(rec.Body.String(), "switch to invalid protocol"):
				// httputil.ReverseProxy refuses to upgrade to a protocol
				// name that is not printable ASCII.
			default:
				t.Fatalf("the upstream was not called for %v; the answer is %d %s", req.Header, rec.Code, rec.Body)
			}
			return
		}
		if hostile {
			t.Fatalf("forwarded a request carrying %v", req.Header)
		}
		if len(sent) != 1 {
			t.Fatalf("the upstream got %d requests", len(sent))
		}
		out := sent[0].Header

		gotIdentity := http.Header{}
		for name, values := range out {
			lower := strings.ToLower(name)
			switch {
			case lower == "authorization", lower == "proxy-authorization":
				t.Fatalf("upstream got %s: %q", name, values)
			case strings.HasPrefix(lower, "impersonate-"):
				gotIdentity[name] = values
			case strings.HasPrefix(lower, "x-remote-"),
				strings.HasPrefix(lower, "x-forwarded-") && lower != "x-forwarded-for",
				lower == "forwarded", lower == "x-real-ip":
				t.Fatalf("upstream got %s: %q", name, values)
			case lower == "x-forwarded-for":
				if name != "X-Forwarded-For" || !slices.Equal(values, []string{peer}) {
					t.Fatalf("upstream got %s: %q, want X-Forwarded-For: %s", name, values, peer)
				}
			case lower == "sec-websocket-protocol":
				// Parsed as kube-apiserver's WebSocket authenticator does,
				// ignoring letter case to be stricter than it is.
				for _, v := range values {
					for _, p := range strings.Split(v, ",") {
						if strings.HasPrefix(strings.ToLower(strings.TrimSpace(p)), wsBearerProtocolPrefix) {
							t.Fatalf("upstream got a bearer subprotocol: %q", values)
						}
					}
				}
			}
		}
		if !reflect.DeepEqual(gotIdentity, want) {
			t.Fatalf("upstream identity headers\n%v\nwant\n%v", gotIdentity, want)
		}
		if got := out.Values("X-Forwarded-For"); !slices.Equal(got, []string{peer}) {
			t.Fatalf("upstream X-Forwarded-For = %q, want %q", got, peer)
		}
		// Belt and braces: a fuzzed value may only appear under an identity
		// name if it is exactly what kip itself put there.
		for name, values := range out {
			lower := strings.ToLower(name)
			if !strings.HasPrefix(lower, "impersonate-") && !strings.HasPrefix(lower, "x-remote-") && lower != "authorization" {
				continue
			}
			for _, v := range values {
				if slices.Contains(fuzzed, v) && !slices.Contains(want[name], v) {
					t.Fatalf("fuzzed value %q reached the upstream as %s", v, name)
				}
			}
		}
	})
}

// forbiddenName reports whether h holds a header that the proxy must refuse
// to forward at all.
func forbiddenName(h http.Header) bool {
	for name := range h {
		lower := strings.ToLower(name)
		if lower == "authorization" || strings.HasPrefix(lower, "impersonate-") {
			return true
		}
	}
	return false
}
