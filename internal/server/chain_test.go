package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/internal/proxy"
)

// watchEventAfter is when slowUpstream sends a watch its one event.
const watchEventAfter = 1500 * time.Millisecond

// slowUpstream never answers short requests, and streams watches: headers
// at once, one event after watchEventAfter.
func slowUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("watch") != "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			select {
			case <-time.After(watchEventAfter):
				_, _ = io.WriteString(w, `{"type":"ADDED"}`+"\n")
			case <-r.Context().Done():
			}
			return
		}
		// A hung upstream never answers: once kip gives up, the connection
		// is dropped without a response, so that only kip can answer.
		select {
		case <-r.Context().Done():
		case <-time.After(time.Minute):
		}
		panic(http.ErrAbortHandler)
	}))
	t.Cleanup(up.Close)
	return up
}

// chainFor builds kip's whole handler chain in front of upstream, with a
// fixed caller and an authorizer that allows everything.
func chainFor(t *testing.T, upstream *httptest.Server, requestTimeout time.Duration) *httptest.Server {
	t.Helper()
	c := NewGenericConfig()
	c.RequestInfoResolver = &request.RequestInfoFactory{APIPrefixes: sets.NewString("api", "apis"), GrouplessAPIPrefixes: sets.NewString("api")}
	c.RequestTimeout = requestTimeout
	c.Authentication.Authenticator = authenticator.RequestFunc(func(*http.Request) (*authenticator.Response, bool, error) {
		return &authenticator.Response{User: &user.DefaultInfo{Name: "alice", Groups: []string{user.AllAuthenticated}}}, true, nil
	})
	c.Authorization.Authorizer = authorizerfactory.NewAlwaysAllowAuthorizer()
	p, err := proxy.New(&rest.Config{Host: upstream.URL, TLSClientConfig: rest.TLSClientConfig{Insecure: true}})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(buildHandlerChain(p, credentialLayers{}, c, observability{}, gatewayLayers{}))
	t.Cleanup(front.Close)
	return front
}

// TestShortRequestsEndAtTheirDeadline: a short request that the upstream
// does not answer ends with a 504 Status once its deadline passes, whether
// the caller set ?timeout= or kip's --request-timeout applies.
func TestShortRequestsEndAtTheirDeadline(t *testing.T) {
	up := slowUpstream(t)
	for _, tc := range []struct {
		name           string
		requestTimeout time.Duration
		query          string
	}{
		{"caller's timeout", time.Minute, "?timeout=1s"},
		{"--request-timeout", time.Second, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			front := chainFor(t, up, tc.requestTimeout)
			// A test deadline far beyond the request's, so that a missing
			// deadline fails the test instead of hanging it.
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, front.URL+"/api/v1/namespaces/default/configmaps/c"+tc.query, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			defer func() { _ = resp.Body.Close() }()
			var status metav1.Status
			if err := json.NewDecoder(resp.Body).Decode(&status); err != nil {
				t.Fatalf("%d, body is not a Status: %v", resp.StatusCode, err)
			}
			if resp.StatusCode != http.StatusGatewayTimeout || status.Reason != metav1.StatusReasonTimeout {
				t.Errorf("got %d %q (%s), want 504 Timeout", resp.StatusCode, status.Reason, status.Message)
			}
		})
	}
}

// TestWatchOutlivesRequestTimeout: a watch is long-running, so neither
// --request-timeout nor any filter cuts it.
func TestWatchOutlivesRequestTimeout(t *testing.T) {
	front := chainFor(t, slowUpstream(t), watchEventAfter/3)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, front.URL+"/api/v1/namespaces/default/configmaps?watch=1", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || string(body) != `{"type":"ADDED"}`+"\n" {
		t.Errorf("watch: %d %q %v, want 200 and the event sent after the request timeout", resp.StatusCode, body, err)
	}
}
