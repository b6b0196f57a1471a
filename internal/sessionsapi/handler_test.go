package sessionsapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/kip-proxy/kip/internal/gateway"
	"github.com/kip-proxy/kip/internal/recording"
	"github.com/kip-proxy/kip/internal/sessions"
	sessionsv1alpha1 "github.com/kip-proxy/kip/pkg/apis/sessions/v1alpha1"
)

var start = time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)

// recordingDir holds three sealed sessions: two in payments (one through
// a gateway's cluster "prod") and one in web.
func recordingDir(t *testing.T) string {
	t.Helper()
	key, err := sessions.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	day := filepath.Join(root, start.Format(time.DateOnly))
	if err := os.MkdirAll(day, 0o700); err != nil {
		t.Fatal(err)
	}
	for i, id := range []recording.Identity{
		{SessionID: "pay1", User: "alice", Namespace: "payments", Pod: "api", Subresource: "exec"},
		{SessionID: "web1", User: "bob", Namespace: "web", Pod: "front", Subresource: "attach"},
		{SessionID: "prod1", User: "alice", Namespace: "payments", Pod: "api", Subresource: "exec", Cluster: "prod"},
	} {
		var buf bytes.Buffer
		at := start.Add(time.Duration(i) * time.Minute)
		w, err := recording.NewWriter(&buf, recording.Header{Identity: id, Start: at}, key)
		if err != nil {
			t.Fatal(err)
		}
		w.Event(recording.Event{Time: at, Stream: recording.StreamStdout, Data: []byte("out of " + id.SessionID)})
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(day, id.SessionID+".cast"), buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// resolve is the request info kip's chain gives path.
func resolve(t *testing.T, r *http.Request) *http.Request {
	t.Helper()
	resolver := &request.RequestInfoFactory{APIPrefixes: sets.NewString("api", "apis"), GrouplessAPIPrefixes: sets.NewString("api")}
	info, err := resolver.NewRequestInfo(r)
	if err != nil {
		t.Fatal(err)
	}
	return r.WithContext(request.WithRequestInfo(r.Context(), info))
}

func TestHandler(t *testing.T) {
	root := recordingDir(t)
	api := WithSessions(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusTeapot) // the proxy
	}), New(sessions.NewDirStore(root)))
	const base = "/apis/sessions.kip.dev/v1alpha1"
	tests := []struct {
		name     string
		method   string
		path     string
		cluster  string // routed through a gateway when set
		wantCode int
		wantIDs  []string // of a list
		wantBody string   // of a recording, a substring
	}{
		{name: "list everywhere", path: base + "/sessions", wantCode: 200, wantIDs: []string{"web1", "pay1"}},
		{name: "list a namespace", path: base + "/namespaces/payments/sessions", wantCode: 200, wantIDs: []string{"pay1"}},
		{name: "list by user", path: base + "/sessions?user=bob", wantCode: 200, wantIDs: []string{"web1"}},
		{name: "list by pod", path: base + "/namespaces/web/sessions?pod=api", wantCode: 200, wantIDs: []string{}},
		{name: "list since", path: base + "/sessions?since=2026-12-06T09:00:30Z", wantCode: 200, wantIDs: []string{"web1"}},
		{name: "list until", path: base + "/sessions?until=2026-12-06T09:00:30Z", wantCode: 200, wantIDs: []string{"pay1"}},
		{name: "list with a limit", path: base + "/sessions?limit=1", wantCode: 200, wantIDs: []string{"web1"}},
		{name: "a gateway's cluster sees its own", path: base + "/sessions", cluster: "prod", wantCode: 200, wantIDs: []string{"prod1"}},
		{name: "get", path: base + "/namespaces/payments/sessions/pay1", wantCode: 200},
		{name: "the recording", path: base + "/namespaces/payments/sessions/pay1/recording", wantCode: 200, wantBody: "out of pay1"},
		{name: "a session of another namespace", path: base + "/namespaces/web/sessions/pay1", wantCode: 404},
		{name: "a recording of another namespace", path: base + "/namespaces/web/sessions/pay1/recording", wantCode: 404},
		{name: "a session of another cluster", path: base + "/namespaces/payments/sessions/prod1/recording", wantCode: 404},
		{name: "a session outside the cluster", path: base + "/namespaces/payments/sessions/pay1", cluster: "prod", wantCode: 404},
		{name: "an unknown session", path: base + "/namespaces/payments/sessions/nope", wantCode: 404},
		{name: "a path for an ID", path: base + "/namespaces/payments/sessions/..%2F..%2Fetc%2Fpasswd/recording", wantCode: 404},
		{name: "another subresource", path: base + "/namespaces/payments/sessions/pay1/log", wantCode: 404},
		{name: "another resource", path: base + "/namespaces/payments/secrets", wantCode: 404},
		{name: "another version", path: "/apis/sessions.kip.dev/v1/sessions", wantCode: 404},
		{name: "the group itself", path: "/apis/sessions.kip.dev", wantCode: 404},
		{name: "delete", method: "DELETE", path: base + "/namespaces/payments/sessions/pay1", wantCode: 405},
		{name: "create", method: "POST", path: base + "/namespaces/payments/sessions", wantCode: 405},
		{name: "watch", path: base + "/sessions?watch=true", wantCode: 405},
		{name: "a bad since", path: base + "/sessions?since=yesterday", wantCode: 400},
		{name: "a bad limit", path: base + "/sessions?limit=-3", wantCode: 400},
		{name: "until before since", path: base + "/sessions?since=2026-12-06T10:00:00Z&until=2026-12-06T09:00:00Z", wantCode: 400},
		{name: "the rest goes to the proxy", path: "/api/v1/namespaces/payments/pods", wantCode: http.StatusTeapot},
		{name: "a look-alike group goes to the proxy", path: "/apis/sessions.kip.dev.evil.com/v1/x", wantCode: http.StatusTeapot},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			r := resolve(t, httptest.NewRequest(method, tt.path, nil))
			if tt.cluster != "" {
				r = r.WithContext(gateway.WithCluster(r.Context(), tt.cluster))
			}
			rec := httptest.NewRecorder()
			api.ServeHTTP(rec, r)
			if rec.Code != tt.wantCode {
				t.Fatalf("%s %s = %d %s, want %d", method, tt.path, rec.Code, rec.Body, tt.wantCode)
			}
			switch {
			case rec.Code == http.StatusTeapot:
			case rec.Code >= 400:
				var st metav1.Status
				if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil || st.Kind != "Status" || int(st.Code) != rec.Code || st.Message == "" {
					t.Errorf("error answer %s is not a Status with the code", rec.Body)
				}
			case tt.wantIDs != nil:
				var list sessionsv1alpha1.SessionList
				if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || list.Kind != "SessionList" {
					t.Fatalf("list answer %s: %v", rec.Body, err)
				}
				got := []string{}
				for _, s := range list.Items {
					got = append(got, s.Name)
				}
				if strings.Join(got, ",") != strings.Join(tt.wantIDs, ",") {
					t.Errorf("listed %v, want %v", got, tt.wantIDs)
				}
			case tt.wantBody != "":
				if ct := rec.Header().Get("Content-Type"); ct != "application/x-asciicast" {
					t.Errorf("recording served as %q", ct)
				}
				if !strings.Contains(rec.Body.String(), tt.wantBody) || !strings.Contains(rec.Body.String(), "kip-seal") {
					t.Errorf("recording %q does not hold %q and its seal", rec.Body, tt.wantBody)
				}
			default:
				var s sessionsv1alpha1.Session
				if err := json.Unmarshal(rec.Body.Bytes(), &s); err != nil || s.Name != "pay1" || s.Namespace != "payments" ||
					s.Spec.User != "alice" || !s.Status.Sealed || s.Status.End == nil || s.Status.Size == 0 {
					t.Errorf("session answer %s", rec.Body)
				}
			}
		})
	}
}

func TestHandlerWithoutRecording(t *testing.T) {
	api := WithSessions(http.NotFoundHandler(), New(nil))
	r := resolve(t, httptest.NewRequest("GET", "/apis/sessions.kip.dev/v1alpha1/sessions", nil))
	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, r)
	if rec.Code != 404 || !strings.Contains(rec.Body.String(), "--recording-dir") {
		t.Errorf("with recording off: %d %s, want a 404 Status that says how to turn it on", rec.Code, rec.Body)
	}
}

func TestHandlerWarnsOfACutList(t *testing.T) {
	h := New(sessions.NewDirStore(recordingDir(t)))
	h.cap = 1
	for query, warned := range map[string]bool{"": true, "?user=alice": false, "?user=bob": false} {
		rec := httptest.NewRecorder()
		WithSessions(http.NotFoundHandler(), h).ServeHTTP(rec, resolve(t, httptest.NewRequest("GET", "/apis/sessions.kip.dev/v1alpha1/sessions"+query, nil)))
		if rec.Code != 200 || (rec.Header().Get("Warning") != "") != warned {
			t.Errorf("list%s: %d, Warning %q; want a warning: %v", query, rec.Code, rec.Header().Get("Warning"), warned)
		}
	}
}
