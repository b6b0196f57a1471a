package identity

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kip-proxy/kip/internal/rig/binaries"
	"github.com/kip-proxy/kip/internal/rig/devstack"
	"github.com/kip-proxy/kip/internal/rig/hydra"
	"github.com/kip-proxy/kip/internal/rig/localcluster"
)

// env is shared by every test in the package: one control plane, one
// Hydra, one kip.
var env struct {
	stack *devstack.Stack
	idp   *devstack.IdentityProvider
	// kip is the kip binary, for the exec plugin kubectl runs.
	kip     string
	kubectl string
	dir     string
	// callbackPorts are registered with Hydra as the client's redirect
	// URIs, http://127.0.0.1:<port>/callback; each test that signs in
	// through `kip login` takes its own.
	callbackPorts chan int
	webhook       *webhookServer
	// auditLog is the upstream's audit log.
	auditLog string
}

// clientID is the OIDC client kip's users sign in with.
const clientID = "kip-cli"

const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: Metadata
`

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	if err := setUp(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "starting the identity test environment: %v\n", err)
		tearDown()
		return 1
	}
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "logs are in %s (set KIP_KEEP_TEST_DIR=1 to keep them)\n", env.dir)
	}
	tearDown()
	return code
}

func setUp(ctx context.Context) error {
	keep := os.Getenv("KIP_KEEP_TEST_DIR") != ""
	dir, err := os.MkdirTemp("", "kip-identity-")
	if err != nil {
		return err
	}
	env.dir = dir
	bins, err := binaries.Ensure(ctx, binaries.Options{Log: os.Stderr})
	if err != nil {
		return err
	}
	env.kubectl = bins.Kubectl
	if env.kip, err = buildKip(ctx, dir); err != nil {
		return err
	}
	ports, err := localcluster.FreePorts(16)
	if err != nil {
		return err
	}
	env.callbackPorts = make(chan int, len(ports))
	var redirects []string
	for _, p := range ports {
		env.callbackPorts <- p
		redirects = append(redirects, "http://127.0.0.1:"+strconv.Itoa(p)+"/callback")
	}
	env.idp, err = devstack.StartIdentityProvider(ctx, devstack.IdentityOptions{
		HydraBinary: bins.Hydra, Dir: dir, Log: os.Stderr, ClientID: clientID, RedirectURIs: redirects, KeepDir: keep,
		ExtraAudiences: []string{shortLivedClient},
	})
	if err != nil {
		return err
	}
	if err := registerRefusalClients(ctx, redirects); err != nil {
		return err
	}
	if env.webhook, err = startWebhook(dir); err != nil {
		return err
	}
	policy := filepath.Join(dir, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
		return err
	}
	env.auditLog = filepath.Join(dir, "audit.log")
	serveArgs := append(env.idp.ServeArgs(),
		"--authentication-token-webhook-config-file="+env.webhook.kubeconfig,
		// The signer CA files are replaced by the rotation test; a short
		// certificate lifetime keeps the old CA's trust window short.
		"--credential-ttl=2m",
		"--access-log",
	)
	env.stack, err = devstack.Start(ctx, devstack.Options{
		Log: os.Stderr, KeepDir: keep, ServeArgs: serveArgs,
		ExtraAPIServerArgs: []string{"--audit-policy-file=" + policy, "--audit-log-path=" + env.auditLog},
	})
	return err
}

func tearDown() {
	if env.stack != nil {
		if err := env.stack.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	if env.webhook != nil {
		env.webhook.Close()
	}
	if env.idp != nil {
		if err := env.idp.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	if os.Getenv("KIP_KEEP_TEST_DIR") == "" && env.dir != "" {
		_ = os.RemoveAll(env.dir)
	}
}

// registerRefusalClients adds the OIDC clients whose tokens kip must
// refuse: one whose ID tokens expire after a second, one for an audience
// kip does not accept.
func registerRefusalClients(ctx context.Context, redirects []string) error {
	admin := env.idp.Hydra.Admin
	for _, id := range []string{shortLivedClient, otherAudienceClient} {
		if _, err := admin.CreateClient(ctx, hydra.Client{ID: id, RedirectURIs: redirects}); err != nil {
			return err
		}
	}
	body := strings.NewReader(`{"authorization_code_grant_id_token_lifespan":"1s"}`)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, env.idp.Hydra.AdminURL+"/admin/clients/"+shortLivedClient+"/lifespans", body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := env.idp.Hydra.HTTPClient().Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("setting the ID token lifespan of %s: %s: %s", shortLivedClient, resp.Status, msg)
	}
	return nil
}

// buildKip builds the kip binary kubectl runs as its exec plugin. Go's
// build cache makes this quick after the first time.
func buildKip(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "kip")
	fmt.Fprintln(os.Stderr, "building kip for the exec plugin")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/kip-proxy/kip/cmd/kip")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building kip: %w\n%s", err, out)
	}
	return bin, nil
}

// callbackPort takes a registered callback port for the test's lifetime.
func callbackPort(t *testing.T) int {
	t.Helper()
	select {
	case p := <-env.callbackPorts:
		t.Cleanup(func() { env.callbackPorts <- p })
		return p
	case <-time.After(time.Minute):
		t.Fatal("no free callback port: too many sign-in tests at once")
		return 0
	}
}
