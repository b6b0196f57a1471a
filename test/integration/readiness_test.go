package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kip-proxy/kip/internal/rig/harness"
)

// readyzBody GETs /readyz?verbose and returns the status code and body;
// code 0 while nothing listens yet.
func readyzBody(probeURL string) (int, string) {
	resp, err := http.Get(probeURL + "/readyz?verbose")
	if err != nil {
		return 0, err.Error()
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestFirstRequestAfterReadyIsServed is what a load balancer does during a
// rolling update: it starts a fresh kip, polls /readyz as fast as it can,
// and sends a request with a certificate from the cluster's client CA the
// moment /readyz says 200. kip learns that CA from a ConfigMap after it
// starts; a kip that calls itself ready before it has would answer 401.
// Several fresh kips are tried, since each start is one throw of the dice.
func TestFirstRequestAfterReadyIsServed(t *testing.T) {
	for attempt := range 3 {
		user := harness.UniqueName("first-caller")
		cfg := stack.UserConfigFor(user)
		cfg.QPS, cfg.Burst = -1, 0
		// Not waited for: the test polls /readyz itself, as fast as it can.
		kip := harness.StartKip(t, harness.KipOptions{Name: fmt.Sprintf("kip-%d", attempt), Stack: stack, Ready: harness.Started})
		probeURL := kip.ProbeURL
		cfg.Host = kip.URL
		client, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}

		var notReady []string // why /readyz refused, while it did
		deadline := time.Now().Add(time.Minute)
		for {
			code, body := readyzBody(probeURL)
			if code == http.StatusOK {
				break
			}
			if code != 0 {
				notReady = append(notReady, body)
			}
			if time.Now().After(deadline) {
				t.Fatalf("attempt %d: kip never became ready; last /readyz: %d %s", attempt, code, body)
			}
			time.Sleep(2 * time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		review, err := client.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		cancel()
		if err != nil {
			t.Fatalf("attempt %d: the first request after /readyz said 200 was not served: %v\n/readyz answers before that:\n%s",
				attempt, err, strings.Join(notReady, "\n"))
		}
		if got := review.Status.UserInfo.Username; got != user {
			t.Fatalf("attempt %d: kip served the first request as %q, want %q", attempt, got, user)
		}
		if _, body := readyzBody(probeURL); !strings.Contains(body, "[+]client-ca ok") {
			t.Errorf("attempt %d: /readyz?verbose does not list the client-ca check:\n%s", attempt, body)
		}
		t.Logf("attempt %d: served as %s after %d not-ready answers", attempt, user, len(notReady))
	}
}

// TestReadyzNamesAnUnreachableIssuer configures an OIDC issuer that cannot
// be reached: kip must stay unready, and /readyz?verbose must say which
// check fails and why.
func TestReadyzNamesAnUnreachableIssuer(t *testing.T) {
	issuer := "https://127.0.0.1:1/unreachable"
	authConfig := unreachableIssuerConfig(t, issuer)
	probeURL := harness.StartKip(t, harness.KipOptions{
		Stack: stack, Args: []string{"--authentication-config=" + authConfig}, Ready: harness.Started,
	}).ProbeURL

	var code int
	var body string
	harness.Eventually(t, time.Minute, func() error {
		if code, body = readyzBody(probeURL); code == 0 {
			return errorf("the probe port is not up yet: %s", body)
		}
		if !strings.Contains(body, "[+]client-ca ok") {
			return errorf("the cluster's client CA has not loaded yet:\n%s", body)
		}
		return nil
	})
	if code != http.StatusInternalServerError {
		t.Fatalf("/readyz answered %d with an unreachable issuer, want 500:\n%s", code, body)
	}
	if !strings.Contains(body, "[-]oidc-issuers failed: ") || !strings.Contains(body, issuer) {
		t.Fatalf("/readyz?verbose does not say that the issuer %s is why kip is not ready:\n%s", issuer, body)
	}
	t.Logf("/readyz?verbose:\n%s", body)
}

// unreachableIssuerConfig writes an AuthenticationConfiguration that
// trusts issuer, an address nothing answers at, and returns its path.
func unreachableIssuerConfig(t *testing.T, issuer string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "authentication.yaml")
	if err := os.WriteFile(path, []byte(`apiVersion: apiserver.config.k8s.io/v1
kind: AuthenticationConfiguration
jwt:
- issuer:
    url: `+issuer+`
    audiences: [kip]
  claimMappings:
    username:
      claim: sub
      prefix: "oidc:"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
