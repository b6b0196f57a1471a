package identity

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"

	"github.com/kip-proxy/kip/internal/login/cache"
	"github.com/kip-proxy/kip/internal/login/execcredential"
	"github.com/kip-proxy/kip/internal/login/oidcflow"
	"github.com/kip-proxy/kip/internal/rig/deviceop"
	"github.com/kip-proxy/kip/internal/rig/harness"
	"github.com/kip-proxy/kip/internal/rig/logintest"
)

// Hydra v2.3.0 has no device flow, so these tests sign in at zitadel's
// OpenID provider (internal/rig/deviceop), running in the test, with a kip
// of their own that trusts it.

// deviceIDTokenLifetime is shorter than kip login's expiry margin (30 s):
// a cached ID token is never fresh enough to reuse, so a second run in
// token mode must spend the refresh token.
const deviceIDTokenLifetime = 25 * time.Second

// TestDeviceFlowSignIn: the real kubectl runs `kip login --flow device`
// as its exec plugin; the person reads the URL and code on kubectl's
// stderr, signs in at the provider and allows the device, and kubectl
// reaches the upstream as that person with their groups. The refresh token
// is cached; the next kubectl call asks for nothing, and in token mode,
// where the ID token is always stale, it is the refresh token that signs
// the next call in.
func TestDeviceFlowSignIn(t *testing.T) {
	name, group := harness.UniqueName("device"), harness.UniqueName("team")
	user := deviceUser(name, group, "device-users")
	op := startDeviceProvider(t, deviceop.Options{IDTokenLifetime: deviceIDTokenLifetime}, user)
	kip := deviceKip(t, op)
	bindGroup(t, group)
	want := authenticationv1.UserInfo{
		Username: user.Email, UID: user.Subject, Groups: []string{group, "device-users", "system:authenticated"},
		Extra: map[string]authenticationv1.ExtraValue{"idp.kip.dev/issuer": {op.IssuerURL}},
	}
	p := &devicePerson{op: op, user: user, approve: true}

	kubeconfig, cacheDir := deviceKubeconfig(t, op, kip, "certificate")
	out, stderr, err := p.kubectl(t, kubeconfig, "auth", "whoami", "-o", "json")
	if err != nil {
		t.Fatalf("kubectl auth whoami through kip login --flow device: %v\n%s", err, stderr)
	}
	checkIdentity(t, parseWhoami(t, out), want)
	if n := p.take(); n != 1 {
		t.Fatalf("%d device sign-ins for the first call, want 1\n%s", n, stderr)
	}
	if e := onlyCachedEntry(t, cacheDir); e.RefreshToken == "" || e.Certificate == "" {
		t.Errorf("the cache holds refresh token %t, certificate %t; want both", e.RefreshToken != "", e.Certificate != "")
	}
	if _, stderr, err := p.kubectl(t, kubeconfig, "get", "configmaps", "-n", "default"); err != nil {
		t.Fatalf("kubectl get configmaps with the cached certificate: %v\n%s", err, stderr)
	}
	if n := p.take(); n != 0 {
		t.Errorf("%d device sign-ins for the second call, want none: the cache was not used", n)
	}
	if g := op.Grants(); g != (deviceop.Grants{DeviceAuthorizations: 1, Approved: 1}) {
		t.Errorf("the provider saw %+v after two calls in certificate mode, want one approved sign-in", g)
	}

	kubeconfig, cacheDir = deviceKubeconfig(t, op, kip, "token")
	for i := range 2 {
		out, stderr, err := p.kubectl(t, kubeconfig, "auth", "whoami", "-o", "json")
		if err != nil {
			t.Fatalf("kubectl auth whoami %d in token mode: %v\n%s", i, err, stderr)
		}
		checkIdentity(t, parseWhoami(t, out), want)
	}
	if n := p.take(); n != 1 {
		t.Errorf("%d device sign-ins for two calls in token mode, want 1", n)
	}
	if g := op.Grants(); g != (deviceop.Grants{DeviceAuthorizations: 2, Approved: 2, Refreshes: 1}) {
		t.Errorf("the provider saw %+v, want a second sign-in for token mode and one refresh", g)
	}
	if e := onlyCachedEntry(t, cacheDir); e.RefreshToken == "" {
		t.Error("no refresh token cached after the refresh")
	}
}

// TestDeviceFlowRefused: when the person denies the device, or never
// enters the code before it expires, `kip login` exits non-zero with a
// message that says which, prints no credential and caches nothing.
func TestDeviceFlowRefused(t *testing.T) {
	tests := []struct {
		name    string
		opts    deviceop.Options
		answers bool
		want    string
	}{
		{name: "denied", answers: true, want: "was denied at"},
		{name: "expired", opts: deviceop.Options{CodeLifetime: 3 * time.Second}, want: "expired before the sign-in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user := deviceUser(harness.UniqueName("refused"), "team")
			op := startDeviceProvider(t, tt.opts, user)
			p := &devicePerson{op: op, user: user, absent: !tt.answers}
			cacheDir := filepath.Join(t.TempDir(), "cache")
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, env.kip, "login", "oidc", "--flow=device", "--skip-browser",
				"--issuer="+op.IssuerURL, "--issuer-ca-file="+writeTemp(t, "device-op-ca.pem", op.CAPEM),
				"--client-id="+clientID, "--cache-dir="+cacheDir)
			cmd.Env = append(os.Environ(), execcredential.EnvVar+"="+logintest.ExecInfo(t, env.stack.KipURL, env.stack.KipCAPEM))
			out, stderr, err := p.run(t, cmd)
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() == 0 {
				t.Fatalf("kip login: %v, want a non-zero exit\n%s", err, stderr)
			}
			if !strings.Contains(stderr, tt.want) || out != "" {
				t.Errorf("kip login said\n%s\nand printed %q; want %q and no credential", stderr, out, tt.want)
			}
			if n := p.take(); n != 1 {
				t.Errorf("%d device prompts, want 1", n)
			}
			if e := onlyCachedEntry(t, cacheDir); e.IDToken != "" || e.RefreshToken != "" {
				t.Error("a refused sign-in left tokens in the cache")
			}
			if g := op.Grants(); g.Approved != 0 {
				t.Errorf("the provider approved %d sign-ins", g.Approved)
			}
		})
	}
}

func deviceUser(name string, groups ...string) deviceop.User {
	return deviceop.User{Subject: name + "-sub", Username: name, Password: harness.UniqueName("password"),
		Email: name + "@example.com", Groups: groups}
}

func startDeviceProvider(t *testing.T, opts deviceop.Options, users ...deviceop.User) *deviceop.Provider {
	t.Helper()
	opts.ClientID, opts.Users = clientID, users
	op, err := deviceop.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = op.Stop() })
	return op
}

// deviceKip starts a kip of the test's own that trusts op alone, with the
// same claim mappings as for Hydra, and signs with the shared signer CA.
func deviceKip(t *testing.T, op *deviceop.Provider) *harness.Kip {
	t.Helper()
	config, err := op.AuthenticationConfig()
	if err != nil {
		t.Fatal(err)
	}
	k := harness.PrepareKip(t, harness.KipOptions{Name: "kip-device", Binary: env.kip, Stack: env.stack, Args: []string{
		"--authentication-config=" + writeTemp(t, "authentication.yaml", config),
		"--signer-ca-cert-file=" + env.idp.SignerCACertFile, "--signer-ca-key-file=" + env.idp.SignerCAKeyFile,
	}})
	if err := k.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return k
}

// deviceKubeconfig runs `kip kubeconfig` for a device-flow user of kip
// with an empty cache, and returns the kubeconfig and the cache directory.
func deviceKubeconfig(t *testing.T, op *deviceop.Provider, kip *harness.Kip, mode string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	path, cacheDir := filepath.Join(dir, "kubeconfig"), filepath.Join(dir, "cache")
	out, err := exec.Command(env.kip, "kubeconfig", "--server="+kip.URL, "--ca-file="+writeTemp(t, "kip-ca.pem", kip.CAPEM),
		"--issuer="+op.IssuerURL, "--issuer-ca-file="+writeTemp(t, "device-op-ca.pem", op.CAPEM), "--client-id="+clientID,
		"--flow=device", "--skip-browser", "--cache-dir="+cacheDir, "--mode="+mode, "--kip-command="+env.kip, "-o", path,
	).CombinedOutput()
	if err != nil {
		t.Fatalf("kip kubeconfig: %v\n%s", err, out)
	}
	return path, cacheDir
}

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// cachedEntry is the one entry in kip login's cache, or an empty one.
func onlyCachedEntry(t *testing.T, cacheDir string) cache.Entry {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(cache.New(cacheDir).Dir(), "*.json"))
	if err != nil || len(files) > 1 {
		t.Fatalf("cache entries %q (%v), want at most one", files, err)
	}
	var e cache.Entry
	if len(files) == 0 {
		return e
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

// devicePerson is the person in front of the terminal: they read the
// verification URL and the code that kip login prints, open the URL on
// another device, and allow or deny, or never come (absent).
type devicePerson struct {
	op              *deviceop.Provider
	user            deviceop.User
	approve, absent bool
	n               atomic.Int32
}

func (p *devicePerson) take() int { return int(p.n.Swap(0)) }

// kubectl runs the real kubectl with kubeconfig and answers every device
// prompt its exec plugin prints.
func (p *devicePerson) kubectl(t *testing.T, kubeconfig string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return p.run(t, exec.CommandContext(ctx, env.kubectl, append([]string{"--kubeconfig=" + kubeconfig}, args...)...))
}

// run runs cmd, answering the device prompts on its stderr.
func (p *devicePerson) run(t *testing.T, cmd *exec.Cmd) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd.Stdout = &out
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	scanner := bufio.NewScanner(pipe)
	var url string
	for scanner.Scan() {
		line := scanner.Text()
		errOut.WriteString(line + "\n")
		if u, ok := strings.CutPrefix(line, oidcflow.SignInURLPrefix); ok {
			url = strings.TrimSpace(u)
		}
		if code, ok := strings.CutPrefix(line, oidcflow.UserCodePrefix); ok {
			p.n.Add(1)
			if err := p.answer(url, strings.TrimSpace(code)); err != nil {
				t.Errorf("answering code %s at %s: %v", code, url, err)
			}
		}
	}
	err = cmd.Wait()
	return out.String(), errOut.String(), err
}

func (p *devicePerson) answer(url, code string) error {
	if p.absent {
		return nil
	}
	if url == "" {
		return errors.New("kip login printed the code before any verification URL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if p.approve {
		return p.op.Approve(ctx, url, code, p.user.Username, p.user.Password)
	}
	return p.op.Deny(ctx, url, code, p.user.Username, p.user.Password)
}
