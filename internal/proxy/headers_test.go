package proxy

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/apiserver/pkg/endpoints/filters/impersonation"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/transport"

	"github.com/kip-proxy/kip/internal/headers"
)

// certUser is what kip's x509 authenticator makes of a client certificate:
// CN, O, system:authenticated and kube-apiserver's credential-id extra.
var certUser = &user.DefaultInfo{
	Name:   "alice",
	Groups: []string{"devs", user.AllAuthenticated},
	Extra:  map[string][]string{user.CredentialIDKey: {"X509SHA256=ab12"}},
}

// header builds an http.Header from name/value pairs, canonicalizing names
// the way net/http does for every header it receives.
func header(pairs ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(pairs); i += 2 {
		h.Add(pairs[i], pairs[i+1])
	}
	return h
}

func TestUpstreamHeaders(t *testing.T) {
	tests := []struct {
		name string
		id   upstreamIdentity
		want http.Header
		// wantUser is what kube-apiserver's impersonation filter makes of
		// the headers; nil when no impersonation is expected.
		wantUser *user.DefaultInfo
		wantErr  string
	}{
		{
			name: "certificate user",
			id:   upstreamIdentity{User: certUser},
			want: header(
				"Impersonate-User", "alice",
				"Impersonate-Group", "devs",
				"Impersonate-Extra-authentication.kubernetes.io%2Fcredential-id", "X509SHA256=ab12",
			),
			wantUser: certUser,
		},
		{
			name: "system:authenticated is left to kube-apiserver, which adds it after the named groups",
			id:   upstreamIdentity{User: &user.DefaultInfo{Name: "bob", UID: "uid-1", Groups: []string{"a", "b"}}},
			want: header(
				"Impersonate-User", "bob",
				"Impersonate-Group", "a",
				"Impersonate-Group", "b",
				"Impersonate-Uid", "uid-1",
			),
			wantUser: &user.DefaultInfo{Name: "bob", UID: "uid-1", Groups: []string{"a", "b", user.AllAuthenticated}},
		},
		{
			name: "user without groups still ends up in system:authenticated",
			id:   upstreamIdentity{User: &user.DefaultInfo{Name: "carol"}},
			want: header(
				"Impersonate-User", "carol",
			),
			wantUser: &user.DefaultInfo{Name: "carol", Groups: []string{user.AllAuthenticated}},
		},
		{
			name: "extra keys are percent-encoded like client-go does",
			id: upstreamIdentity{User: &user.DefaultInfo{
				Name:   "dave",
				Groups: []string{user.AllAuthenticated},
				Extra: map[string][]string{
					"example.com/team":   {"red", "blue"},
					"with space":         {"v"},
					"100%":               {"percent"},
					"ключ":               {"unicode key", "значение"},
					"a:b,c":              {"separators"},
					"scopes":             {"view", "edit"},
					"odd!#$&'*+-.^_`|~x": {"tchars stay"},
				},
			}},
			want: header(
				"Impersonate-User", "dave",
				"Impersonate-Extra-example.com%2Fteam", "red",
				"Impersonate-Extra-example.com%2Fteam", "blue",
				"Impersonate-Extra-with%20space", "v",
				"Impersonate-Extra-100%25", "percent",
				"Impersonate-Extra-%D0%BA%D0%BB%D1%8E%D1%87", "unicode key",
				"Impersonate-Extra-%D0%BA%D0%BB%D1%8E%D1%87", "значение",
				"Impersonate-Extra-a%3Ab%2Cc", "separators",
				"Impersonate-Extra-scopes", "view",
				"Impersonate-Extra-scopes", "edit",
				"Impersonate-Extra-odd!#$&'*+-.^_`|~x", "tchars stay",
			),
			wantUser: &user.DefaultInfo{
				Name:   "dave",
				Groups: []string{user.AllAuthenticated},
				Extra: map[string][]string{
					"example.com/team":   {"red", "blue"},
					"with space":         {"v"},
					"100%":               {"percent"},
					"ключ":               {"unicode key", "значение"},
					"a:b,c":              {"separators"},
					"scopes":             {"view", "edit"},
					"odd!#$&'*+-.^_`|~x": {"tchars stay"},
				},
			},
		},
		{
			name: "nested impersonation records the original caller",
			id: upstreamIdentity{
				User:     &user.DefaultInfo{Name: "bob", Groups: []string{user.AllAuthenticated}},
				Original: &user.DefaultInfo{Name: "alice", UID: "u-1", Groups: []string{"devs", user.AllAuthenticated}, Extra: map[string][]string{user.CredentialIDKey: {"X509SHA256=ab12"}}},
			},
			want: header(
				"Impersonate-User", "bob",
				"Impersonate-Extra-original-user-info.kip.dev", `{"username":"alice","uid":"u-1","groups":["devs","system:authenticated"],"extra":{"authentication.kubernetes.io/credential-id":["X509SHA256=ab12"]}}`,
			),
			wantUser: &user.DefaultInfo{
				Name:   "bob",
				Groups: []string{user.AllAuthenticated},
				Extra: map[string][]string{
					headers.OriginalUserExtraKey: {`{"username":"alice","uid":"u-1","groups":["devs","system:authenticated"],"extra":{"authentication.kubernetes.io/credential-id":["X509SHA256=ab12"]}}`},
				},
			},
		},
		{
			name: "passthrough token is forwarded alone",
			id: upstreamIdentity{
				User:  &user.DefaultInfo{Name: "system:serviceaccount:ns:sa", Groups: []string{"system:serviceaccounts", user.AllAuthenticated}},
				Token: "sa-token",
			},
			want: header("Authorization", "Bearer sa-token"),
		},
		{
			name: "passthrough token with nested impersonation: the upstream audits the token's owner itself",
			id: upstreamIdentity{
				User:     &user.DefaultInfo{Name: "bob", Groups: []string{"viewers"}},
				Original: &user.DefaultInfo{Name: "system:serviceaccount:ns:sa"},
				Token:    "sa-token",
			},
			want: header(
				"Authorization", "Bearer sa-token",
				"Impersonate-User", "bob",
				"Impersonate-Group", "viewers",
			),
			wantUser: &user.DefaultInfo{Name: "bob", Groups: []string{"viewers", user.AllAuthenticated}},
		},
		{
			name: "anonymous user is not made authenticated",
			id:   upstreamIdentity{User: &user.DefaultInfo{Name: user.Anonymous, Groups: []string{user.AllUnauthenticated}}},
			want: header(
				"Impersonate-User", "system:anonymous",
				"Impersonate-Group", "system:unauthenticated",
			),
			wantUser: &user.DefaultInfo{Name: user.Anonymous, Groups: []string{user.AllUnauthenticated}},
		},
		{
			name: "user in system:unauthenticated is not also made authenticated",
			id:   upstreamIdentity{User: &user.DefaultInfo{Name: "eve", Groups: []string{user.AllUnauthenticated}}},
			want: header(
				"Impersonate-User", "eve",
				"Impersonate-Group", "system:unauthenticated",
			),
			wantUser: &user.DefaultInfo{Name: "eve", Groups: []string{user.AllUnauthenticated}},
		},
		{
			name: "a user in both system:unauthenticated and system:authenticated keeps both",
			id:   upstreamIdentity{User: &user.DefaultInfo{Name: "frank", Groups: []string{user.AllUnauthenticated, user.AllAuthenticated}}},
			want: header(
				"Impersonate-User", "frank",
				"Impersonate-Group", "system:unauthenticated",
				"Impersonate-Group", "system:authenticated",
			),
			wantUser: &user.DefaultInfo{Name: "frank", Groups: []string{user.AllUnauthenticated, user.AllAuthenticated}},
		},
		{
			name:    "empty user name fails closed: an empty Impersonate-User would run as kip",
			id:      upstreamIdentity{User: &user.DefaultInfo{Groups: []string{"system:masters"}}},
			wantErr: "without a name",
		},
		{
			name: "empty user name behind a passthrough token with nested impersonation fails closed",
			id: upstreamIdentity{
				User:     &user.DefaultInfo{Groups: []string{"system:masters"}},
				Original: &user.DefaultInfo{Name: "system:serviceaccount:ns:sa"},
				Token:    "sa-token",
			},
			wantErr: "without a name",
		},
		{
			name: "a user that already carries the original-user extra cannot forge the audit record",
			id: upstreamIdentity{
				User:     &user.DefaultInfo{Name: "bob", Extra: map[string][]string{headers.OriginalUserExtraKey: {`{"username":"mallory"}`}}},
				Original: &user.DefaultInfo{Name: "alice"},
			},
			wantErr: "reserved",
		},
		{
			name: "the reserved extra is refused in any letter case, even without nested impersonation",
			id: upstreamIdentity{
				User: &user.DefaultInfo{Name: "bob", Extra: map[string][]string{"Original-User-Info.KIP.dev": {`{"username":"mallory"}`}}},
			},
			wantErr: "reserved",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := upstreamHeaders(tt.id)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("upstreamHeaders() error = %v, want one containing %q (headers %v)", err, tt.wantErr, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("upstreamHeaders() error = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("upstreamHeaders() =\n%v\nwant\n%v", got, tt.want)
			}
			gotUser := impersonatedByAPIServer(t, got)
			if !reflect.DeepEqual(gotUser, tt.wantUser) {
				t.Errorf("kube-apiserver would impersonate\n%#v\nwant\n%#v", gotUser, tt.wantUser)
			}
		})
	}
}

// impersonatedByAPIServer runs headers through k8s.io/apiserver's own
// impersonation filter, which is what kube-apiserver does with them, and
// returns the user it switches to (nil if it does not impersonate).
func impersonatedByAPIServer(t *testing.T, h http.Header) *user.DefaultInfo {
	t.Helper()
	var got *user.DefaultInfo
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := request.UserFrom(r.Context())
		if u.GetName() == "kip" {
			return
		}
		got = &user.DefaultInfo{Name: u.GetName(), UID: u.GetUID(), Groups: u.GetGroups(), Extra: u.GetExtra()}
		if len(got.Extra) == 0 {
			got.Extra = nil
		}
	})
	filter := impersonation.WithImpersonation(inner, authorizerfactory.NewAlwaysAllowAuthorizer(), scheme.Codecs)
	req := httptest.NewRequest(http.MethodGet, "/api/v1/namespaces", nil)
	req.Header = h.Clone()
	req = req.WithContext(request.WithUser(req.Context(), &user.DefaultInfo{Name: "kip"}))
	rec := httptest.NewRecorder()
	filter.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("kube-apiserver's impersonation filter refused the headers: %d %s", rec.Code, rec.Body)
	}
	return got
}

// TestExtraHeaderMatchesClientGo checks the encoding of extra keys against
// client-go's own impersonating transport, which kube-apiserver is built to
// decode.
func TestExtraHeaderMatchesClientGo(t *testing.T) {
	keys := []string{
		user.CredentialIDKey,
		"example.com/team",
		"with space",
		"100%",
		"%2F already escaped",
		"ключ",
		"tab\there",
		"quote\"and\\backslash",
		"a:b,c;d=e(f)<g>@h?i[j]{k}",
		"UPPER.case/Key",
		"",
	}
	for _, key := range keys {
		t.Run(key, func(t *testing.T) {
			var sent http.Header
			rt := transport.NewImpersonatingRoundTripper(transport.ImpersonationConfig{
				UserName: "u",
				Extra:    map[string][]string{key: {"v"}},
			}, roundTripperFunc(func(r *http.Request) (*http.Response, error) {
				sent = r.Header
				return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
			}))
			req := httptest.NewRequest(http.MethodGet, "https://upstream.test/", nil)
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			var clientGo []string
			for name := range sent {
				if strings.HasPrefix(name, authenticationv1.ImpersonateUserExtraHeaderPrefix) {
					clientGo = append(clientGo, name)
				}
			}
			want := []string{http.CanonicalHeaderKey(extraHeader(key))}
			if !slices.Equal(clientGo, want) {
				t.Errorf("client-go sends %q, kip sends %q", clientGo, want)
			}
		})
	}
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
