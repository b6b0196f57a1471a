package whoami

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

// fakeAPIServer answers SelfSubjectReviews for the bearer token "alice".
func fakeAPIServer(t *testing.T) *httptest.Server {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/apis/authentication.k8s.io/v1/selfsubjectreviews" {
			http.NotFound(w, r)
			return
		}
		if r.Header.Get("Authorization") != "Bearer alice" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(authenticationv1.SelfSubjectReview{Status: authenticationv1.SelfSubjectReviewStatus{
			UserInfo: authenticationv1.UserInfo{
				Username: "alice@example.com", UID: "1234", Groups: []string{"devs", "system:authenticated"},
				Extra: map[string]authenticationv1.ExtraValue{"b": {"2"}, "a": {"1", "x"}},
			},
		}})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func review(t *testing.T, token string) (*authenticationv1.SelfSubjectReview, error) {
	srv := fakeAPIServer(t)
	cfg := &rest.Config{Host: srv.URL, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
	return Review(context.Background(), cfg)
}

func TestPrint(t *testing.T) {
	r, err := review(t, "alice")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		format string
		check  func(t *testing.T, out string)
	}{
		{format: "", check: func(t *testing.T, out string) {
			want := `ATTRIBUTE   VALUE
Username    alice@example.com
UID         1234
Groups      [devs system:authenticated]
Extra: a    [1 x]
Extra: b    [2]
`
			if out != want {
				t.Errorf("got\n%s\nwant\n%s", out, want)
			}
		}},
		{format: "json", check: func(t *testing.T, out string) {
			var got authenticationv1.SelfSubjectReview
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatal(err)
			}
			if got.Kind != "SelfSubjectReview" || got.APIVersion != "authentication.k8s.io/v1" || got.Status.UserInfo.Username != "alice@example.com" {
				t.Errorf("unexpected JSON %s", out)
			}
		}},
		{format: "yaml", check: func(t *testing.T, out string) {
			var got authenticationv1.SelfSubjectReview
			if err := yaml.Unmarshal([]byte(out), &got); err != nil {
				t.Fatal(err)
			}
			if got.Status.UserInfo.UID != "1234" || !strings.Contains(out, "kind: SelfSubjectReview") {
				t.Errorf("unexpected YAML %s", out)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.format, func(t *testing.T) {
			var out bytes.Buffer
			if err := Print(&out, r, tc.format); err != nil {
				t.Fatal(err)
			}
			tc.check(t, out.String())
		})
	}
	if err := Print(&bytes.Buffer{}, r, "wide"); err == nil {
		t.Error("an unknown format was accepted")
	}
}

func TestReviewUnauthorized(t *testing.T) {
	_, err := review(t, "mallory")
	if err == nil || !strings.Contains(err.Error(), "Unauthorized") {
		t.Fatalf("want Unauthorized, got %v", err)
	}
}
