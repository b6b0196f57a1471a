package server

import (
	"net/http"
	"net/http/httptest"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"
)

func TestWithUnusedImpersonationRefused(t *testing.T) {
	scheme := runtime.NewScheme()
	metav1.AddToGroupVersion(scheme, schema.GroupVersion{Version: "v1"})
	codecs := serializer.NewCodecFactory(scheme)
	caller := &user.DefaultInfo{Name: "alice", Groups: []string{"devs"}}

	for _, tc := range []struct {
		name     string
		header   http.Header
		user     user.Info
		wantCode int
	}{
		{"clean request", http.Header{"Accept": {"application/json"}}, caller, http.StatusOK},
		{"empty Impersonate-User", http.Header{"Impersonate-User": {""}}, caller, http.StatusBadRequest},
		{"unknown impersonation header", http.Header{"Impersonate-Foo": {"x"}}, caller, http.StatusBadRequest},
		{"lower-case name Go left alone", http.Header{"impersonate-user": {"bob"}}, caller, http.StatusBadRequest},
		{"look-alike name", http.Header{"X-Impersonate-User": {"bob"}}, caller, http.StatusOK},
		{"forged original-caller extra", nil, &user.DefaultInfo{Name: "bob", Extra: map[string][]string{"original-user-info.kip.dev": {"{}"}}}, http.StatusBadRequest},
		{"forged extra in another case", nil, &user.DefaultInfo{Name: "bob", Extra: map[string][]string{"Original-User-Info.KIP.dev": {"{}"}}}, http.StatusBadRequest},
		{"other extras", nil, &user.DefaultInfo{Name: "bob", Extra: map[string][]string{"example.com/team": {"a"}}}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reached := false
			h := withUnusedImpersonationRefused(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true }), codecs)
			req := httptest.NewRequest(http.MethodGet, "/api/v1/pods", nil)
			for k, v := range tc.header {
				req.Header[k] = v
			}
			req = req.WithContext(request.WithUser(req.Context(), tc.user))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.wantCode || reached != (tc.wantCode == http.StatusOK) {
				t.Fatalf("code %d (reached next: %v), want %d: %s", rec.Code, reached, tc.wantCode, rec.Body)
			}
		})
	}
}
