package caller

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/apiserver/pkg/endpoints/filters/impersonation"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/kubernetes/scheme"
)

func TestWithOriginalUser(t *testing.T) {
	alice := &user.DefaultInfo{Name: "alice", Groups: []string{"devs", user.AllAuthenticated}}
	bob := &user.DefaultInfo{Name: "bob", Groups: []string{user.AllAuthenticated}}

	// kubesImpersonation is the filter that follows WithOriginalUser in
	// kip's chain: it swaps in the user named by Impersonate-* headers.
	kubesImpersonation := func(next http.Handler) http.Handler {
		return impersonation.WithImpersonation(next, authorizerfactory.NewAlwaysAllowAuthorizer(), scheme.Codecs)
	}
	replaceWith := func(u user.Info) func(http.Handler) http.Handler {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				next.ServeHTTP(w, r.WithContext(request.WithUser(r.Context(), u)))
			})
		}
	}

	tests := []struct {
		name         string
		user         user.Info // put into the context before WithOriginalUser; nil for none
		inner        func(http.Handler) http.Handler
		header       http.Header
		wantUser     user.Info
		wantOriginal user.Info // nil: OriginalUserFrom must report nothing
	}{
		{name: "no authenticated user", wantUser: nil, wantOriginal: nil},
		{name: "no impersonation", user: alice, wantUser: alice, wantOriginal: alice},
		{
			name:         "kube's impersonation filter replaces the user",
			user:         alice,
			inner:        kubesImpersonation,
			header:       http.Header{"Impersonate-User": {"bob"}},
			wantUser:     bob,
			wantOriginal: alice,
		},
		{
			name:         "impersonation filter without impersonation headers",
			user:         alice,
			inner:        kubesImpersonation,
			wantUser:     alice,
			wantOriginal: alice,
		},
		{
			name:         "any inner handler replacing the user",
			user:         alice,
			inner:        replaceWith(bob),
			wantUser:     bob,
			wantOriginal: alice,
		},
		{
			name:         "a user set only after WithOriginalUser is not the original",
			inner:        replaceWith(bob),
			wantUser:     bob,
			wantOriginal: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotUser, gotOriginal user.Info
			var gotOK bool
			var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				gotUser, _ = request.UserFrom(r.Context())
				gotOriginal, gotOK = OriginalUserFrom(r.Context())
			})
			if tt.inner != nil {
				h = tt.inner(h)
			}
			h = WithOriginalUser(h)

			req := httptest.NewRequest(http.MethodGet, "/api/v1/pods", nil)
			if tt.header != nil {
				req.Header = tt.header
			}
			if tt.user != nil {
				req = req.WithContext(request.WithUser(req.Context(), tt.user))
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}

			if !sameInfo(gotUser, tt.wantUser) {
				t.Errorf("user = %#v, want %#v", gotUser, tt.wantUser)
			}
			if gotOK != (tt.wantOriginal != nil) || !sameInfo(gotOriginal, tt.wantOriginal) {
				t.Errorf("OriginalUserFrom = %#v, %v; want %#v", gotOriginal, gotOK, tt.wantOriginal)
			}
		})
	}
}

func TestOriginalUserKeepsUpstreamVerification(t *testing.T) {
	// The proxy passes a caller's token through when the original user is
	// upstream-verified, even after nested impersonation.
	verified := &upstreamVerifiedUser{Info: &user.DefaultInfo{Name: "system:serviceaccount:ns:sa"}, token: "sa-token"}
	var original user.Info
	h := WithOriginalUser(impersonation.WithImpersonation(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		original, _ = OriginalUserFrom(r.Context())
	}), authorizerfactory.NewAlwaysAllowAuthorizer(), scheme.Codecs))
	req := httptest.NewRequest(http.MethodGet, "/api/v1/pods", nil)
	req.Header.Set("Impersonate-User", "bob")
	h.ServeHTTP(httptest.NewRecorder(), req.WithContext(request.WithUser(req.Context(), verified)))
	if token, ok := PassthroughToken(original); !ok || token != "sa-token" {
		t.Errorf("PassthroughToken(original) = %q, %v; want the caller's token", token, ok)
	}
}

// sameInfo compares what two users say about themselves.
func sameInfo(a, b user.Info) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	extra := func(u user.Info) map[string][]string {
		if len(u.GetExtra()) == 0 {
			return nil
		}
		return u.GetExtra()
	}
	return a.GetName() == b.GetName() && a.GetUID() == b.GetUID() &&
		reflect.DeepEqual(a.GetGroups(), b.GetGroups()) && reflect.DeepEqual(extra(a), extra(b))
}
