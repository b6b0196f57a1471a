package identity

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"

	"github.com/kip-proxy/kip/internal/login/oidcflow"
	"github.com/kip-proxy/kip/internal/rig/harness"
	"github.com/kip-proxy/kip/internal/rig/hydra"
)

// userKubeconfig runs `kip kubeconfig` as a platform team would, for a
// user whose cache starts empty, and returns its path. mode is
// certificate or token; more flags go to `kip login oidc`.
func userKubeconfig(t *testing.T, mode string, loginFlags ...string) string {
	t.Helper()
	path, args := kubeconfigArgs(t, mode, loginFlags...)
	args = append(args, "--kip-command="+env.kip)
	if out, err := exec.Command(env.kip, args...).CombinedOutput(); err != nil {
		t.Fatalf("kip kubeconfig: %v\n%s", err, out)
	}
	return path
}

// kubeconfigArgs are the arguments of `kip kubeconfig` for a user of
// Hydra whose cache starts empty, and the file they write.
func kubeconfigArgs(t *testing.T, mode string, loginFlags ...string) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	kipCA := filepath.Join(dir, "kip-ca.pem")
	issuerCA := filepath.Join(dir, "issuer-ca.pem")
	for path, data := range map[string][]byte{kipCA: env.stack.KipCAPEM, issuerCA: env.idp.Hydra.CAPEM} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "kubeconfig")
	return path, append([]string{"kubeconfig",
		"--server=" + env.stack.KipURL, "--ca-file=" + kipCA,
		"--issuer=" + env.idp.Hydra.IssuerURL, "--issuer-ca-file=" + issuerCA, "--client-id=" + clientID,
		"--listen-address=127.0.0.1:" + strconv.Itoa(callbackPort(t)),
		"--cache-dir=" + filepath.Join(dir, "cache"), "--mode=" + mode, "-o", path,
	}, loginFlags...)
}

// signInCounter plays the person at the browser for kubectl runs: each
// sign-in URL `kip login --skip-browser` prints is answered through Hydra
// as who, and counted.
type signInCounter struct {
	who hydra.Person
	n   atomic.Int32
	// env is kubectl's environment; nil means this process's.
	env []string
}

// watch reads a kubectl's stderr, answers sign-in URLs, and keeps the rest.
func (s *signInCounter) watch(t *testing.T, stderr io.Reader, keep *bytes.Buffer, mu *sync.Mutex) {
	scanner := bufio.NewScanner(stderr)
	for scanner.Scan() {
		line := scanner.Text()
		mu.Lock()
		keep.WriteString(line + "\n")
		mu.Unlock()
		raw, ok := strings.CutPrefix(line, oidcflow.SignInURLPrefix)
		if !ok {
			continue
		}
		s.n.Add(1)
		if err := answerSignIn(strings.TrimSpace(raw), s.who); err != nil {
			t.Errorf("signing in at %s: %v", raw, err)
		}
	}
}

func answerSignIn(authorizeURL string, who hydra.Person) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	callback, err := env.idp.Hydra.SignIn(ctx, authorizeURL, who)
	if err != nil {
		return err
	}
	return hydra.VisitCallback(ctx, callback)
}

// kubectl runs the real kubectl with kubeconfig, signing in as s.who
// whenever kip login asks, and returns stdout and stderr.
func (s *signInCounter) kubectl(t *testing.T, kubeconfig string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, env.kubectl, append([]string{"--kubeconfig=" + kubeconfig}, args...)...)
	cmd.Env = s.env
	var out, errOut bytes.Buffer
	var mu sync.Mutex
	cmd.Stdout = &out
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); s.watch(t, pipe, &errOut, &mu) }()
	<-done
	err = cmd.Wait()
	mu.Lock()
	defer mu.Unlock()
	return out.String(), errOut.String(), err
}

func (s *signInCounter) take() int { return int(s.n.Swap(0)) }

// TestKubectlWithKipLogin is the whole story with the real kubectl: the
// first call signs in through the provider and gets a certificate, RBAC
// refuses, a binding for the provider's group allows, the next calls use
// the cache, and the upstream sees the provider's UID and extras.
func TestKubectlWithKipLogin(t *testing.T) {
	name, group := harness.UniqueName("kubectl"), harness.UniqueName("team")
	s := &signInCounter{who: person(name, group)}
	kubeconfig := userKubeconfig(t, "certificate", "--skip-browser")

	_, stderr, err := s.kubectl(t, kubeconfig, "get", "configmaps", "-n", "default")
	if err == nil || !strings.Contains(stderr, "forbidden") || !strings.Contains(stderr, name+"@example.com") {
		t.Fatalf("before any binding: err=%v\n%s\nwant forbidden for %s@example.com", err, stderr, name)
	}
	if n := s.take(); n != 1 {
		t.Fatalf("%d sign-ins for the first call, want 1", n)
	}
	bindGroup(t, group)
	if _, stderr, err := s.kubectl(t, kubeconfig, "get", "configmaps", "-n", "default"); err != nil {
		t.Fatalf("after binding %s: %v\n%s", group, err, stderr)
	}
	out, stderr, err := s.kubectl(t, kubeconfig, "auth", "whoami", "-o", "json")
	if err != nil {
		t.Fatalf("kubectl auth whoami: %v\n%s", err, stderr)
	}
	checkIdentity(t, parseWhoami(t, out), idpUser(name, group))
	if n := s.take(); n != 0 {
		t.Fatalf("%d sign-ins within the certificate's lifetime, want none: the cache was not used", n)
	}

	kipOut, err := exec.Command(env.kip, "whoami", "--kubeconfig="+kubeconfig, "-o", "json").Output()
	if err != nil {
		t.Fatalf("kip whoami: %v", err)
	}
	checkIdentity(t, parseWhoami(t, string(kipOut)), idpUser(name, group))
}

// TestParallelKubectlSignInOnce: ten kubectl calls at once from a cold
// cache do one sign-in between them and all succeed.
func TestParallelKubectlSignInOnce(t *testing.T) {
	name, group := harness.UniqueName("parallel"), harness.UniqueName("team")
	bindGroup(t, group)
	s := &signInCounter{who: person(name, group)}
	kubeconfig := userKubeconfig(t, "certificate", "--skip-browser")
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Go(func() {
			if _, stderr, err := s.kubectl(t, kubeconfig, "get", "configmaps", "-n", "default"); err != nil {
				errs[i] = fmt.Errorf("%w\n%s", err, stderr)
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("kubectl %d: %v", i, err)
		}
	}
	if n := s.take(); n != 1 {
		t.Errorf("ten parallel kubectl calls signed in %d times, want once", n)
	}
}

// TestKubectlBearerMode: with --mode token the ID token itself goes to
// kip, which impersonates the same identity.
func TestKubectlBearerMode(t *testing.T) {
	name := harness.UniqueName("token-mode")
	s := &signInCounter{who: person(name, "devs")}
	kubeconfig := userKubeconfig(t, "token", "--skip-browser")
	out, stderr, err := s.kubectl(t, kubeconfig, "auth", "whoami", "-o", "json")
	if err != nil {
		t.Fatalf("kubectl auth whoami: %v\n%s", err, stderr)
	}
	got := parseWhoami(t, out)
	checkIdentity(t, got, idpUser(name, "devs"))
	if id := got.Extra[credentialIDKey]; len(id) != 1 || !strings.HasPrefix(id[0], "JTI=") {
		t.Errorf("credential-id %q, want the ID token's, as a bearer token", id)
	}
	if n := s.take(); n != 1 {
		t.Errorf("%d sign-ins, want 1", n)
	}
}

func parseWhoami(t *testing.T, out string) *authenticationv1.UserInfo {
	t.Helper()
	var r authenticationv1.SelfSubjectReview
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("parsing a SelfSubjectReview: %v\n%s", err, out)
	}
	return &r.Status.UserInfo
}
