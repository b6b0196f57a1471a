package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/kip-proxy/kip/internal/gateway"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apiserver/pkg/authentication/user"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"
)

func TestWithMaxInFlight(t *testing.T) {
	scheme := runtime.NewScheme()
	metav1.AddToGroupVersion(scheme, metav1.SchemeGroupVersion)
	codecs := serializer.NewCodecFactory(scheme)
	longRunning := func(_ *http.Request, info *apirequest.RequestInfo) bool { return info.Verb == "watch" }

	type request struct {
		verb   string
		groups []string
	}
	tests := []struct {
		name     string
		readOnly int
		mutating int
		held     request // occupies its slot while the probe is sent
		probe    request
		wantCode int
	}{
		{"a second read waits for the one slot", 1, 1, request{verb: "list"}, request{verb: "get"}, http.StatusTooManyRequests},
		{"a second write waits for the one slot", 1, 1, request{verb: "create"}, request{verb: "patch"}, http.StatusTooManyRequests},
		{"writes do not take reads' slots", 1, 1, request{verb: "create"}, request{verb: "get"}, http.StatusOK},
		{"reads do not take writes' slots", 1, 1, request{verb: "list"}, request{verb: "delete"}, http.StatusOK},
		{"watches are long-running and exempt", 1, 1, request{verb: "list"}, request{verb: "watch"}, http.StatusOK},
		{"system:masters is always answered", 1, 1, request{verb: "list"}, request{verb: "list", groups: []string{user.SystemPrivilegedGroup}}, http.StatusOK},
		{"a group named like masters is not", 1, 1, request{verb: "list"}, request{verb: "list", groups: []string{"System:Masters"}}, http.StatusTooManyRequests},
		{"no read limit", 0, 1, request{verb: "list"}, request{verb: "get"}, http.StatusOK},
		{"no write limit", 1, 0, request{verb: "create"}, request{verb: "update"}, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entered, release := make(chan struct{}), make(chan struct{})
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("X-Hold") != "" {
					close(entered)
					<-release
				}
				w.WriteHeader(http.StatusOK)
			})
			h := withMaxInFlight(next, tt.readOnly, tt.mutating, longRunning, codecs)
			send := func(req request, hold bool) *httptest.ResponseRecorder {
				r := httptest.NewRequest(http.MethodGet, "/api/v1/namespaces/x/configmaps", nil)
				if hold {
					r.Header.Set("X-Hold", "1")
				}
				ctx := apirequest.WithRequestInfo(r.Context(), &apirequest.RequestInfo{IsResourceRequest: true, Verb: req.verb})
				ctx = apirequest.WithUser(ctx, &user.DefaultInfo{Name: "alice", Groups: req.groups})
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r.WithContext(ctx))
				return w
			}
			done := make(chan *httptest.ResponseRecorder)
			go func() { done <- send(tt.held, true) }()
			<-entered
			got := send(tt.probe, false)
			close(release)
			if held := <-done; held.Code != http.StatusOK {
				t.Fatalf("the held request got %d", held.Code)
			}
			if got.Code != tt.wantCode {
				t.Fatalf("got %d, want %d: %s", got.Code, tt.wantCode, got.Body)
			}
			if tt.wantCode != http.StatusTooManyRequests {
				return
			}
			if got.Header().Get("Retry-After") != "1" {
				t.Errorf("Retry-After = %q, want 1", got.Header().Get("Retry-After"))
			}
			var status metav1.Status
			if err := json.Unmarshal(got.Body.Bytes(), &status); err != nil || status.Kind != "Status" || status.Reason != metav1.StatusReasonTooManyRequests {
				t.Errorf("body is not a TooManyRequests Status (%v): %s", err, got.Body)
			}
			// The slot comes back once the held request ends.
			if again := send(tt.probe, false); again.Code != http.StatusOK {
				t.Errorf("after the held request ended: %d", again.Code)
			}
		})
	}
}

func TestWithMaxInFlightNeedsRequestInfo(t *testing.T) {
	h := withMaxInFlight(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("served without RequestInfo") }), 1, 1, nil, nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("got %d, want 500", w.Code)
	}
}

// TestClusterShare fills cluster a's share of kip's read limit with
// requests that hang, as a slow cluster's do: a's next request is refused
// with 429, and cluster b is still served.
func TestClusterShare(t *testing.T) {
	scheme := runtime.NewScheme()
	metav1.AddToGroupVersion(scheme, metav1.SchemeGroupVersion)
	codecs := serializer.NewCodecFactory(scheme)
	release := make(chan struct{})
	defer close(release)
	entered := make(chan struct{}, 8)
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if name, _ := gateway.ClusterFrom(r.Context()); name == "a" {
			entered <- struct{}{}
			<-release
		}
		w.WriteHeader(http.StatusOK)
	})
	const limit = 4 // kip-wide; each cluster may hold 2
	h := withMaxInFlight(withClusterShare(next, limit, limit, nil, codecs), limit, limit, nil, codecs)
	send := func(cluster string) int {
		r := httptest.NewRequest(http.MethodGet, "/api/v1/pods", nil)
		ctx := gateway.WithCluster(r.Context(), cluster)
		ctx = apirequest.WithRequestInfo(ctx, &apirequest.RequestInfo{IsResourceRequest: true, Verb: "list"})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r.WithContext(ctx))
		return rec.Code
	}
	for range 2 {
		go send("a")
		<-entered
	}
	if code := send("a"); code != http.StatusTooManyRequests {
		t.Fatalf("a third request to the slow cluster: %d, want 429", code)
	}
	for range 2 {
		if code := send("b"); code != http.StatusOK {
			t.Fatalf("another cluster, while the slow one holds its share: %d", code)
		}
	}
}
