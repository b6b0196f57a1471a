package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/kip-proxy/kip/internal/rig/harness"
)

// TestUpstreamDownAndBackDisruptive stops the shared kube-apiserver, so every
// other test in the package would fail while it runs; the package has no
// parallel tests, and the cleanup brings the API server back whatever
// happens. It proves that kip answers an honest 503 while its upstream is
// gone, says so on /readyz without failing /livez, and serves again once the
// upstream is back, without a restart of its own.
func TestUpstreamDownAndBackDisruptive(t *testing.T) {
	user := harness.UniqueName("upstream")
	grantCluster(t, userSubject(user), rbacv1.PolicyRule{
		APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get"},
	})
	client := rawClient(t, rawHTTP2, rawUserCert(t, user))
	get := rawRequest{path: "/api/v1/namespaces/default"}
	upstream, err := url.Parse(stack.Cluster.URL)
	if err != nil {
		t.Fatal(err)
	}

	harness.Eventually(t, 30*time.Second, func() error { return rawWantCode(client, get, http.StatusOK) })

	running := true
	t.Cleanup(func() {
		if !running {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := stack.Cluster.StartAPIServer(ctx); err != nil {
				t.Errorf("starting kube-apiserver again for the tests that follow: %v", err)
				return
			}
		}
		// Later tests need kip to be serving again, not just the upstream.
		harness.Eventually(t, time.Minute, func() error { return kipProbeIs("/readyz", http.StatusOK) })
	})
	if err := stack.Cluster.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	running = false

	// A connection kip already had may fail differently while it is torn
	// down; the answer settles on 503 once kip has to dial.
	var seen []int
	harness.Eventually(t, 30*time.Second, func() error {
		res, err := rawTry(client, rawHTTP2, get)
		if err != nil {
			return err
		}
		seen = append(seen, res.code)
		st, err := rawStatus(res, http.StatusServiceUnavailable)
		if err != nil {
			return err
		}
		if st.Reason != "ServiceUnavailable" || !strings.Contains(st.Message, upstream.Host) {
			return fmt.Errorf("503 should name the upstream %s and say it is unavailable: %s", upstream.Host, res.body)
		}
		t.Logf("while the upstream is down: %d %s: %s", st.Code, st.Reason, st.Message)
		return nil
	})
	if len(seen) > 1 {
		t.Logf("codes seen before kip settled on 503: %v", seen[:len(seen)-1])
	}
	for _, code := range seen {
		if code < 500 {
			t.Errorf("kip answered %d while its upstream was down", code)
		}
	}
	harness.Eventually(t, 30*time.Second, func() error { return kipProbeIsNot("/readyz", http.StatusOK) })
	if code, body, err := kipProbeGet("/readyz"); err == nil {
		t.Logf("/readyz while the upstream is down: %d\n%s", code, body)
	}
	if err := kipProbeIs("/livez", http.StatusOK); err != nil {
		t.Errorf("kip's liveness must not depend on its upstream, or it gets restarted for nothing: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := stack.Cluster.StartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	running = true

	harness.Eventually(t, time.Minute, func() error { return rawWantCode(client, get, http.StatusOK) })
	harness.Eventually(t, time.Minute, func() error { return kipProbeIs("/readyz", http.StatusOK) })
}

// rawWantCode sends req over HTTP/2 and reports an error unless kip answers code.
func rawWantCode(client *http.Client, req rawRequest, code int) error {
	res, err := rawTry(client, rawHTTP2, req)
	if err != nil {
		return err
	}
	if res.code != code {
		return fmt.Errorf("%s: got %d, want %d: %s", req.path, res.code, code, res.body)
	}
	return nil
}

// kipProbeIs reports an error unless kip's probe server answers path with code.
func kipProbeIs(path string, code int) error {
	got, body, err := kipProbeGet(path)
	if err != nil {
		return err
	}
	if got != code {
		return fmt.Errorf("GET %s: got %d, want %d: %s", path, got, code, body)
	}
	return nil
}

// kipProbeIsNot reports an error while kip's probe server answers path with code.
func kipProbeIsNot(path string, code int) error {
	got, body, err := kipProbeGet(path)
	if err != nil {
		return err
	}
	if got == code {
		return fmt.Errorf("GET %s: still %d: %s", path, got, body)
	}
	return nil
}

func kipProbeGet(path string) (int, string, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(stack.ProbeURL + path + "?verbose")
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}
