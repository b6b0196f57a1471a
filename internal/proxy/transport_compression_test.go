package proxy

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"k8s.io/client-go/rest"
)

// TestTransportLeavesAcceptEncodingToTheCaller proves kip neither adds
// gzip on a caller's behalf nor unpacks what the caller asked for packed.
func TestTransportLeavesAcceptEncodingToTheCaller(t *testing.T) {
	upstream := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen-Accept-Encoding", r.Header.Get("Accept-Encoding"))
		if r.Header.Get("Accept-Encoding") == "gzip" {
			w.Header().Set("Content-Encoding", "gzip")
		}
		_, _ = w.Write([]byte("body"))
	}))
	defer upstream.Close()
	for _, upgrade := range []bool{false, true} {
		rt, err := transportFor(&rest.Config{Host: upstream.URL, TLSClientConfig: rest.TLSClientConfig{Insecure: true}}, upgrade)
		if err != nil {
			t.Fatal(err)
		}
		for _, sent := range []string{"", "gzip"} {
			req, _ := http.NewRequest(http.MethodGet, upstream.URL, nil)
			if sent != "" {
				req.Header.Set("Accept-Encoding", sent)
			}
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if got := resp.Header.Get("X-Seen-Accept-Encoding"); got != sent {
				t.Errorf("upgrade transport %v: caller sent Accept-Encoding %q, upstream saw %q", upgrade, sent, got)
			}
			if sent == "gzip" && (resp.Header.Get("Content-Encoding") != "gzip" || resp.Uncompressed) {
				t.Errorf("upgrade transport %v: a gzip answer was unpacked in kip", upgrade)
			}
		}
	}
}
