package identity

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kip-proxy/kip/internal/rig/binaries"
	"github.com/kip-proxy/kip/internal/rig/devstack"
	"github.com/kip-proxy/kip/internal/rig/harness"
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

// confidential is a client with a secret (client_secret_basic), for the
// providers that give even a CLI one; kip accepts its ID tokens too.
var confidential = oidcClient{id: "kip-cli-confidential", secret: "a-secret-for-kip-cli-confidential-0123456789"}

func TestMain(m *testing.M) {
	os.Exit(harness.Main(m, "identity", setUp))
}

func setUp(ctx context.Context, dir string) (harness.Shared, error) {
	shared := harness.Shared{Stop: tearDown}
	env.dir = dir
	bins, err := binaries.Ensure(ctx, binaries.Options{Log: os.Stderr})
	if err != nil {
		return shared, err
	}
	env.kubectl = bins.Kubectl
	if env.kip, err = harness.BuildKip(ctx, os.Stderr); err != nil {
		return shared, err
	}
	ports, err := localcluster.FreePorts(16)
	if err != nil {
		return shared, err
	}
	env.callbackPorts = make(chan int, len(ports))
	var redirects []string
	for _, p := range ports {
		env.callbackPorts <- p
		redirects = append(redirects, "http://127.0.0.1:"+strconv.Itoa(p)+"/callback")
	}
	env.idp, err = devstack.StartIdentityProvider(ctx, devstack.IdentityOptions{
		HydraBinary: bins.Hydra, Dir: dir, Log: os.Stderr, ClientID: clientID, RedirectURIs: redirects, KeepDir: harness.KeepDir(),
		ExtraAudiences: []string{shortLivedClient, confidential.id},
	})
	if err != nil {
		return shared, err
	}
	if err := registerRefusalClients(ctx, redirects); err != nil {
		return shared, err
	}
	if env.webhook, err = startWebhook(dir); err != nil {
		return shared, err
	}
	policy, err := harness.WriteAuditPolicy(dir)
	if err != nil {
		return shared, err
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
		Log: os.Stderr, KeepDir: harness.KeepDir(), ServeArgs: serveArgs,
		ExtraAPIServerArgs: []string{"--audit-policy-file=" + policy, "--audit-log-path=" + env.auditLog},
	})
	return shared, err
}

// tearDown stops what setUp started, the stack first.
func tearDown() error {
	var err error
	if env.stack != nil {
		err = env.stack.Stop()
	}
	if env.webhook != nil {
		env.webhook.Close()
	}
	if env.idp != nil {
		err = errors.Join(err, env.idp.Stop())
	}
	return err
}

// registerRefusalClients adds the OIDC clients whose tokens kip must
// refuse: one whose ID tokens expire after a second, one for an audience
// kip does not accept; and the confidential client.
func registerRefusalClients(ctx context.Context, redirects []string) error {
	admin := env.idp.Hydra.Admin
	for _, id := range []string{shortLivedClient, otherAudienceClient} {
		if _, err := admin.CreateClient(ctx, hydra.Client{ID: id, RedirectURIs: redirects}); err != nil {
			return err
		}
	}
	if _, err := admin.CreateClient(ctx, hydra.Client{ID: confidential.id, Secret: confidential.secret, RedirectURIs: redirects}); err != nil {
		return err
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
