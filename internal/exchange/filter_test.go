package exchange

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestWithExchange(t *testing.T) {
	cases := []struct {
		name         string
		method       string
		target       string
		wantExchange bool
	}{
		{name: "the path", target: Path, wantExchange: true},
		{name: "with a query", target: Path + "?timeout=10s", wantExchange: true},
		{name: "with an empty query", target: Path + "?", wantExchange: true},
		{name: "absolute form", target: "https://kip.test" + Path, wantExchange: true},
		{name: "GET reaches the exchange, which answers 405", method: http.MethodGet, target: Path, wantExchange: true},
		{name: "DELETE reaches the exchange, which answers 405", method: http.MethodDelete, target: Path, wantExchange: true},

		{name: "trailing slash", target: Path + "/"},
		{name: "sub-path", target: Path + "/x"},
		{name: "named object", target: Path + "/login"},
		{name: "status subresource", target: Path + "/login/status"},
		{name: "longer name", target: Path + "x"},
		{name: "prefix only", target: "/apis/login.kip.dev/v1alpha1/tokencredential"},
		{name: "group discovery", target: "/apis/login.kip.dev/v1alpha1"},
		{name: "namespaced", target: "/apis/login.kip.dev/v1alpha1/namespaces/default/tokencredentialrequests"},
		{name: "dot-dot into the path", target: "/apis/login.kip.dev/v1alpha1/x/../tokencredentialrequests"},
		{name: "dot-dot out of the path", target: Path + "/../../../../api/v1/secrets"},
		{name: "dot segment", target: "/apis/login.kip.dev/v1alpha1/./tokencredentialrequests"},
		{name: "double slash", target: "//apis/login.kip.dev/v1alpha1/tokencredentialrequests"},
		{name: "double slash inside", target: "/apis/login.kip.dev//v1alpha1/tokencredentialrequests"},
		{name: "encoded slash", target: "/apis/login.kip.dev%2Fv1alpha1/tokencredentialrequests"},
		{name: "encoded letter", target: "/apis/login.kip.dev/v1alpha1/%74okencredentialrequests"},
		{name: "encoded trailing slash", target: Path + "%2F"},
		{name: "encoded dot-dot", target: "/apis/login.kip.dev/v1alpha1/x/%2e%2e/tokencredentialrequests"},
		{name: "upper case", target: "/APIS/LOGIN.KIP.DEV/V1ALPHA1/TOKENCREDENTIALREQUESTS"},
		{name: "semicolon parameter", target: Path + ";x=y"},
		{name: "other group", target: "/apis/authentication.k8s.io/v1/tokenreviews"},
		{name: "core API", target: "/api/v1/namespaces/default/secrets"},
		{name: "root", target: "/"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			var gotExchange, gotNext bool
			h := WithExchange(
				http.HandlerFunc(func(http.ResponseWriter, *http.Request) { gotNext = true }),
				http.HandlerFunc(func(http.ResponseWriter, *http.Request) { gotExchange = true }),
			)
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(method, tc.target, nil))
			if gotExchange != tc.wantExchange || gotNext == tc.wantExchange {
				t.Errorf("exchange %v, next %v; want exchange %v", gotExchange, gotNext, tc.wantExchange)
			}
		})
	}
}

// TestWithExchangeMethods runs the real exchange behind the filter: the
// path answers 405 with Allow: POST to anything but POST.
func TestWithExchangeMethods(t *testing.T) {
	f := newFixture(t, nil)
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := WithExchange(next, f.handler)
	for _, tc := range []struct {
		method, target string
		want           int
	}{
		{http.MethodGet, Path, http.StatusMethodNotAllowed},
		{http.MethodHead, Path, http.StatusMethodNotAllowed},
		{http.MethodPut, Path, http.StatusMethodNotAllowed},
		{http.MethodPatch, Path, http.StatusMethodNotAllowed},
		{http.MethodDelete, Path, http.StatusMethodNotAllowed},
		{http.MethodOptions, Path, http.StatusMethodNotAllowed},
		{http.MethodGet, Path + "/", http.StatusTeapot},
		{http.MethodGet, "/api/v1/pods", http.StatusTeapot},
	} {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(tc.method, tc.target, nil))
			if w.Code != tc.want {
				t.Fatalf("code %d, want %d", w.Code, tc.want)
			}
			if tc.want == http.StatusMethodNotAllowed && w.Header().Get("Allow") != http.MethodPost {
				t.Errorf("Allow %q, want POST", w.Header().Get("Allow"))
			}
		})
	}
}
