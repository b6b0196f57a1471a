package identity

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/kip-proxy/kip/internal/rig/harness"
)

// TestBadConfigFileIsRefusedAtStart: kip serve refuses to start on a
// KipConfiguration with a bad value or an unknown field, naming it.
func TestBadConfigFileIsRefusedAtStart(t *testing.T) {
	const header = "apiVersion: kip.dev/v1alpha1\nkind: KipConfiguration\n"
	for _, tt := range []struct{ name, content, want string }{
		{"bad value", header + "serving: {port: 70000}\n", "serving.port"},
		{"unknown field", header + "authentication: {credentialTTl: 5m}\n", "credentialTTl"},
		{"wrong kind", "apiVersion: kip.dev/v1alpha1\nkind: KubeletConfiguration\n", "KubeletConfiguration"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "kip.yaml")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, env.kip, "serve", "--config="+path).CombinedOutput()
			if err == nil || ctx.Err() != nil {
				t.Fatalf("kip serve started (or hung) with a bad config file: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("kip serve's error does not name %q:\n%s", tt.want, out)
			}
		})
	}
}

// TestBadAuthenticationConfigReloadKeepsServing: the running kip is given
// a broken AuthenticationConfiguration; it keeps the last good one, so ID
// tokens still work, and says so in its reload metric; the fixed file is
// taken again.
func TestBadAuthenticationConfigReloadKeepsServing(t *testing.T) {
	path := env.idp.AuthenticationConfigFile
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	restore := func() {
		if err := os.WriteFile(path, good, 0o600); err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(restore)
	if err := os.WriteFile(path, []byte("apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\njwt: [{issuer: {url: http://not-https}}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitForReloadMetric(t, 0)

	name := harness.UniqueName("after-bad-reload")
	got, err := whoami(t, bearerConfig(idToken(t, clientID, person(name))))
	if err != nil {
		t.Fatalf("an ID token after a bad reload: %v", err)
	}
	checkIdentity(t, got, idpUser(name))

	restore()
	waitForReloadMetric(t, 1)
}

// waitForReloadMetric waits until kip_config_last_reload_success for the
// authentication configuration reads want.
func waitForReloadMetric(t *testing.T, want float64) {
	t.Helper()
	const name = "kip_config_last_reload_success"
	labels := map[string]string{"config": "authentication"}
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		m, err := harness.ScrapeMetrics(ctx, http.DefaultClient, env.stack.ProbeURL+"/metrics")
		switch {
		case err != nil:
			last = err.Error()
		case !m.Has(name, labels):
			last = "no such series"
		default:
			last = fmt.Sprint(m.Sample(name, labels))
		}
		return err == nil && m.Has(name, labels) && m.Sample(name, labels) == want, nil
	})
	if err != nil {
		t.Fatalf("waiting for %s%v %v on /metrics; last seen %s", name, labels, want, last)
	}
}
