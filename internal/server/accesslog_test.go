package server

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/klog/v2"
)

func TestAccessLog(t *testing.T) {
	as := func(name string) func(http.Handler) http.Handler {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				next.ServeHTTP(w, r.WithContext(request.WithUser(r.Context(), &user.DefaultInfo{Name: name})))
			})
		}
	}
	none := func(next http.Handler) http.Handler { return next }
	tests := []struct {
		name          string
		authenticate  func(http.Handler) http.Handler // sets the caller, as authentication does
		impersonate   func(http.Handler) http.Handler // swaps the user, as impersonation does
		code          int
		want, wantNot []string
	}{
		{name: "a caller", authenticate: as("alice"), impersonate: none, code: 200,
			want: []string{`"Access"`, `user="alice"`, `verb="get"`, `path="/api/v1/pods"`, "code=200", "latency="}, wantNot: []string{"impersonatedUser"}},
		{name: "a caller acting as another user", authenticate: as("alice"), impersonate: as("bob"), code: 403,
			want: []string{`user="alice"`, `impersonatedUser="bob"`, "code=403"}},
		{name: "no caller", authenticate: none, impersonate: none, code: 401,
			want: []string{`user=""`, "code=401"}, wantNot: []string{"impersonatedUser"}},
		{name: "nothing of the request beyond its path", authenticate: as("alice"), impersonate: none, code: 200,
			wantNot: []string{"secret-token", "labelSelector"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			klog.LogToStderr(false)
			klog.SetOutput(&out)
			defer func() {
				klog.SetOutput(os.Stderr)
				klog.LogToStderr(true)
			}()
			proxy := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(tt.code) })
			h := withAccessLog(tt.authenticate(withAccessLogUser(tt.impersonate(withAccessLogUser(proxy)))))
			r := httptest.NewRequest(http.MethodGet, "/api/v1/pods?labelSelector=x", nil)
			r.Header.Set("Authorization", "Bearer secret-token")
			r = r.WithContext(request.WithRequestInfo(r.Context(), &request.RequestInfo{Verb: "get"}))
			h.ServeHTTP(httptest.NewRecorder(), r)
			klog.Flush()
			line := out.String()
			for _, w := range tt.want {
				if !strings.Contains(line, w) {
					t.Errorf("the access log line lacks %s:\n%s", w, line)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(line, w) {
					t.Errorf("the access log line has %s:\n%s", w, line)
				}
			}
		})
	}
}
