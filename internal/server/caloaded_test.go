package server

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
)

// lateCA is a CA source whose bundle arrives when the test says so, as the
// cluster's client-CA ConfigMap does a moment after kip's port opens.
type lateCA struct{ bundle atomic.Pointer[[]byte] }

func (c *lateCA) Name() string { return "late" }
func (c *lateCA) CurrentCABundleContent() []byte {
	if b := c.bundle.Load(); b != nil {
		return *b
	}
	return nil
}
func (c *lateCA) VerifyOptions() (x509.VerifyOptions, bool) { return x509.VerifyOptions{}, false }
func (c *lateCA) AddListener(dynamiccertificates.Listener)  {}
func (c *lateCA) load(b string)                             { bb := []byte(b); c.bundle.Store(&bb) }
func withPeerCertificate(r *http.Request) *http.Request {
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{}}}
	return r
}
func plainTLS(r *http.Request) *http.Request { r.TLS = &tls.ConnectionState{}; return r }
func noTLS(r *http.Request) *http.Request    { return r }

func TestWithClientCAsLoaded(t *testing.T) {
	scheme := runtime.NewScheme()
	metav1.AddToGroupVersion(scheme, metav1.SchemeGroupVersion)
	codecs := serializer.NewCodecFactory(scheme)
	loadedCA, unloadedCA := &lateCA{}, &lateCA{}
	loadedCA.load("pem")

	tests := []struct {
		name     string
		sources  []dynamiccertificates.CAContentProvider
		request  func(*http.Request) *http.Request
		wantCode int
	}{
		{"certificate while a source is empty", []dynamiccertificates.CAContentProvider{loadedCA, unloadedCA}, withPeerCertificate, http.StatusServiceUnavailable},
		{"certificate once every source has loaded", []dynamiccertificates.CAContentProvider{loadedCA}, withPeerCertificate, http.StatusOK},
		{"no certificate: a token does not need the CAs", []dynamiccertificates.CAContentProvider{unloadedCA}, plainTLS, http.StatusOK},
		{"no TLS at all", []dynamiccertificates.CAContentProvider{unloadedCA}, noTLS, http.StatusOK},
		{"no CA sources", nil, withPeerCertificate, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := withClientCAsLoaded(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }), tt.sources, codecs)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, tt.request(httptest.NewRequest(http.MethodGet, "/api/v1/pods", nil)))
			if w.Code != tt.wantCode {
				t.Fatalf("got %d, want %d: %s", w.Code, tt.wantCode, w.Body)
			}
			if tt.wantCode != http.StatusServiceUnavailable {
				return
			}
			if w.Header().Get("Retry-After") != "1" {
				t.Errorf("Retry-After = %q, want 1", w.Header().Get("Retry-After"))
			}
			var status metav1.Status
			if err := json.Unmarshal(w.Body.Bytes(), &status); err != nil || status.Reason != metav1.StatusReasonServiceUnavailable {
				t.Errorf("not a ServiceUnavailable Status (%v): %s", err, w.Body)
			}
		})
	}
}

// Once every source has loaded, the filter stops looking: a CA source
// never becomes empty again, and the check would cost every request.
func TestWithClientCAsLoadedServesOnceLoaded(t *testing.T) {
	ca := &lateCA{}
	h := withClientCAsLoaded(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }), []dynamiccertificates.CAContentProvider{ca}, serializer.NewCodecFactory(runtime.NewScheme()))
	send := func() int {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, withPeerCertificate(httptest.NewRequest(http.MethodGet, "/", nil)))
		return w.Code
	}
	if code := send(); code != http.StatusServiceUnavailable {
		t.Fatalf("before loading: %d, want 503", code)
	}
	ca.load("pem")
	if code := send(); code != http.StatusOK {
		t.Fatalf("after loading: %d, want 200", code)
	}
	ca.bundle.Store(nil)
	if code := send(); code != http.StatusOK {
		t.Fatalf("after loading once: %d, want 200", code)
	}
}
