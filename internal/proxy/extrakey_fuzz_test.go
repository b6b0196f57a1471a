package proxy

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/endpoints/filters/impersonation"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/transport"

	"github.com/kip-proxy/kip/internal/headers"
)

// FuzzExtraKeyRoundTrip encodes an identity with one arbitrary extra key the
// way kip sends it upstream, puts the headers through net/http's HTTP/1.1
// parser, and decodes them with kube-apiserver's own impersonation filter
// (impersonation.WithImpersonation in k8s.io/apiserver
// pkg/endpoints/filters/impersonation/impersonation.go, which calls the
// unexported unescapeExtraKey). For every key, either kip refuses it because
// it names the reserved headers.OriginalUserExtraKey in any letter case, or:
//
//   - every header kip sends has a valid HTTP field name, and every name is
//     Impersonate-User, Impersonate-Group or starts with Impersonate-Extra-,
//     so no key can turn into another Impersonate-* header or any other one;
//   - the extra header's name is the one client-go's impersonating transport
//     sends for the same key, once canonicalized;
//   - kube-apiserver sees exactly kip's user, groups and no UID, and exactly
//     one extra: the original key with ASCII letters A-Z lower-cased and every
//     other byte (non-ASCII, invalid UTF-8, '%', controls) unchanged, with
//     its values in order; it authorizes exactly those impersonations.
//
// The lower-casing is kube-apiserver's, not kip's or client-go's: header
// names are case insensitive (net/http canonicalizes them on both sides), so
// buildImpersonationRequests lower-cases the percent-encoded name before
// unescaping it. Because kip percent-encodes every byte that is not an
// RFC 7230 tchar, that reaches only ASCII letters; strings.ToLower would also
// fold non-ASCII letters, which kube-apiserver does not.
func FuzzExtraKeyRoundTrip(f *testing.F) {
	// The checked-in corpus in testdata/fuzz/FuzzExtraKeyRoundTrip holds the
	// hostile keys; these are the everyday ones.
	for _, key := range []string{"scopes", "example.com/team", user.CredentialIDKey} {
		f.Add(key)
	}
	wantGroups := []string{"devs", user.AllAuthenticated}
	values := []string{"b", "a"}

	f.Fuzz(func(t *testing.T, key string) {
		in := &user.DefaultInfo{Name: "alice", Groups: []string{"devs"}, Extra: map[string][]string{key: values}}
		h, err := upstreamHeaders(upstreamIdentity{User: in})
		if reserved := strings.EqualFold(key, headers.OriginalUserExtraKey); reserved || err != nil {
			if !reserved || err == nil {
				t.Fatalf("key %q: reserved %v, error %v", key, reserved, err)
			}
			return
		}
		for name := range h {
			if !httpguts.ValidHeaderFieldName(name) {
				t.Fatalf("key %q gives the invalid header name %q", key, name)
			}
			if name != authenticationv1.ImpersonateUserHeader && name != authenticationv1.ImpersonateGroupHeader &&
				!strings.HasPrefix(name, authenticationv1.ImpersonateUserExtraHeaderPrefix) {
				t.Fatalf("key %q gives the header %q", key, name)
			}
		}

		if clientGo, kip := clientGoExtraHeader(t, key), http.CanonicalHeaderKey(extraHeader(key)); clientGo != kip {
			t.Fatalf("key %q: client-go sends %q, kip sends %q", key, clientGo, kip)
		}
		wantKey := asciiLower(key)
		if wantKey == headers.OriginalUserExtraKey {
			t.Fatalf("key %q would forge the original user, yet kip sent it", key)
		}
		got, asked := decodeAsKubeAPIServer(t, h)
		want := &user.DefaultInfo{Name: "alice", Groups: wantGroups, Extra: map[string][]string{wantKey: values}}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("key %q: kube-apiserver sees\n%#v\nwant\n%#v\nheaders %q", key, got, want, h)
		}
		// system:authenticated is not asked for: kube-apiserver adds it
		// without a check.
		wantAsked := []impersonated{{"users", "", "alice"}, {"groups", "", "devs"}}
		for _, v := range values {
			wantAsked = append(wantAsked, impersonated{"userextras", wantKey, v})
		}
		if !reflect.DeepEqual(asked, wantAsked) {
			t.Fatalf("key %q: kube-apiserver authorizes %+v, want %+v", key, asked, wantAsked)
		}
	})
}

// decodeAsKubeAPIServer writes h as an HTTP/1.1 request, reads it back as
// net/http's server does (canonicalizing names), and runs it through
// kube-apiserver's impersonation filter with an authorizer that allows
// everything. It returns the user the filter hands on and the
// impersonations it asked the authorizer about, in order.
func decodeAsKubeAPIServer(t *testing.T, h http.Header) (user.Info, []impersonated) {
	t.Helper()
	var wire strings.Builder
	wire.WriteString("GET /api HTTP/1.1\r\nHost: upstream.test\r\n")
	if err := h.Write(&wire); err != nil {
		t.Fatal(err)
	}
	wire.WriteString("\r\n")
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(wire.String())))
	if err != nil {
		t.Fatalf("net/http cannot read what kip sends: %v\n%s", err, wire.String())
	}
	req = req.WithContext(request.WithUser(context.Background(), &user.DefaultInfo{Name: "system:serviceaccount:kip-system:kip"}))

	authz := &recordingAuthorizer{}
	var got user.Info
	handler := impersonation.WithImpersonation(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		got, _ = request.UserFrom(r.Context())
	}), authz, scheme.Codecs)
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	if got == nil {
		t.Fatalf("kube-apiserver refused the headers: %d %s\n%s", rec.Code, rec.Body, wire.String())
	}
	return got, authz.asked
}

// clientGoExtraHeader is the name of the header client-go's impersonating
// transport sends for an extra key.
func clientGoExtraHeader(t *testing.T, key string) string {
	t.Helper()
	var names []string
	rt := transport.NewImpersonatingRoundTripper(transport.ImpersonationConfig{
		UserName: "u",
		Extra:    map[string][]string{key: {"v"}},
	}, roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		for name := range r.Header {
			if strings.HasPrefix(name, authenticationv1.ImpersonateUserExtraHeaderPrefix) {
				names = append(names, name)
			}
		}
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
	}))
	resp, err := rt.RoundTrip(httptest.NewRequest(http.MethodGet, "https://upstream.test/", nil))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if len(names) != 1 {
		t.Fatalf("client-go sends %q for key %q", names, key)
	}
	return names[0]
}

// recordingAuthorizer allows every impersonation and records what it was
// asked.
type recordingAuthorizer struct{ asked []impersonated }

// impersonated is one impersonation kube-apiserver authorizes; for an extra
// the subresource is the decoded key and the name its value.
type impersonated struct{ resource, subresource, name string }

func (a *recordingAuthorizer) Authorize(_ context.Context, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
	a.asked = append(a.asked, impersonated{attrs.GetResource(), attrs.GetSubresource(), attrs.GetName()})
	return authorizer.DecisionAllow, "", nil
}

// asciiLower lower-cases A-Z only, as kube-apiserver's strings.ToLower does
// to the percent-encoded, all-ASCII header name before it unescapes it.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}
