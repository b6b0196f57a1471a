package integration

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kip-proxy/kip/internal/command"
	"github.com/kip-proxy/kip/internal/rig/harness"
	"github.com/kip-proxy/kip/internal/sessions"
	"github.com/kip-proxy/kip/internal/sessionsapi"
)

// sessionsReaderRules let a user list sessions and read their recordings
// in a namespace.
var sessionsReaderRules = []rbacv1.PolicyRule{{
	APIGroups: []string{"sessions.kip.dev"}, Resources: []string{"sessions", "sessions/recording"}, Verbs: []string{"get", "list"},
}}

// TestSessionsAPI proves the read side of recording end to end: a real
// kubectl exec through a kip with --recording-dir is listed and replayed
// by the real kip sessions command for a user whose namespaced Role
// allows it, and only in that namespace; a user without RBAC gets 403 on
// the list and on the recording; and kip sessions verify passes on the
// recording and fails once one byte of it changed.
func TestSessionsAPI(t *testing.T) {
	ns, otherNS := createNamespace(t), createNamespace(t)
	runner := harness.UniqueName("runner")
	grant(t, ns, userSubject(runner), streamingRules...)
	reader, nobody := harness.UniqueName("auditor"), harness.UniqueName("nobody")
	grant(t, ns, userSubject(reader), sessionsReaderRules...)
	dir := t.TempDir()
	kipURL := harness.StartInProcess(t, stack, "--recording-dir="+dir)
	runnerConfig := kubeconfigAt(t, kipURL, runner)
	readerConfig := kubeconfigAt(t, kipURL, reader)
	nobodyConfig := kubeconfigAt(t, kipURL, nobody)
	waitCanCreate(t, runnerConfig, ns, "exec")

	pod := harness.UniqueName("sessions")
	runPod(t, ns, nodeFor(t, nodeModes[0]), podWith(pod))
	pub := recordingKey(t, dir)
	const marker = "recorded-for-the-auditor"
	res := kubectl(t, runnerConfig, "exec", "-n", ns, pod, "--", "sh", "-c", "echo "+marker)
	if res.ExitCode != 0 || res.Stdout != marker+"\n" {
		t.Fatalf("kubectl exec: exit %d\nstdout: %q\nstderr: %q", res.ExitCode, res.Stdout, res.Stderr)
	}
	newRecording(t, dir, nil, pub)
	files := castFiles(t, dir)
	id := strings.TrimSuffix(filepath.Base(files[0]), ".cast")

	ctx := context.Background()
	t.Run("without RBAC, 403", func(t *testing.T) {
		c := sessionsClient(t, nobodyConfig)
		if _, err := c.List(ctx, ns, sessions.Filter{}); !apierrors.IsForbidden(err) {
			t.Errorf("list by a user without RBAC = %v, want 403", err)
		}
		if rc, err := c.Recording(ctx, ns, id); !apierrors.IsForbidden(err) {
			if rc != nil {
				_ = rc.Close()
			}
			t.Errorf("recording read by a user without RBAC = %v, want 403", err)
		}
		if _, err := kipSessions(t, "list", "--kubeconfig", nobodyConfig, "-n", ns); err == nil || !strings.Contains(err.Error(), "forbidden") {
			t.Errorf("kip sessions list by a user without RBAC = %v, want forbidden", err)
		}
	})

	t.Run("with a Role in the namespace", func(t *testing.T) {
		var out string
		harness.Eventually(t, 30*time.Second, func() error {
			var err error
			out, err = kipSessions(t, "list", "--kubeconfig", readerConfig, "-n", ns)
			return err
		})
		if !strings.Contains(out, id) || !strings.Contains(out, runner) || !strings.Contains(out, ns+"/"+pod) || !strings.Contains(out, "exec") {
			t.Errorf("kip sessions list -n %s:\n%s\nwant session %s of %s in %s/%s", ns, out, id, runner, ns, pod)
		}
		if out, err := kipSessions(t, "list", "--kubeconfig", readerConfig, "-n", ns, "--user", "someone-else"); err != nil || strings.Contains(out, id) {
			t.Errorf("list of another user's sessions = %s, %v; want none", out, err)
		}
		played, err := kipSessions(t, "play", "--kubeconfig", readerConfig, "-n", ns, "--speed", "100", id)
		if err != nil || !strings.Contains(played, marker+"\n") {
			t.Errorf("kip sessions play = %q, %v; want the command's output", played, err)
		}
		keyFiles, _ := filepath.Glob(filepath.Join(dir, "keys", "*.pub"))
		if out, err := kipSessions(t, "verify", "--kubeconfig", readerConfig, "-n", ns, "--key", keyFiles[0], id); err != nil || !strings.Contains(out, "sealed") {
			t.Errorf("kip sessions verify of the recording read from kip = %q, %v", out, err)
		}
	})

	t.Run("with a Role in the namespace, 403 elsewhere", func(t *testing.T) {
		c := sessionsClient(t, readerConfig)
		if _, err := c.List(ctx, otherNS, sessions.Filter{}); !apierrors.IsForbidden(err) {
			t.Errorf("list in another namespace = %v, want 403", err)
		}
		if _, err := c.List(ctx, "", sessions.Filter{}); !apierrors.IsForbidden(err) {
			t.Errorf("list in every namespace = %v, want 403", err)
		}
		if rc, err := c.Recording(ctx, otherNS, id); !apierrors.IsForbidden(err) {
			if rc != nil {
				_ = rc.Close()
			}
			t.Errorf("the recording asked for in another namespace = %v, want 403", err)
		}
		if _, err := kipSessions(t, "play", "--kubeconfig", readerConfig, "-n", otherNS, id); err == nil || !strings.Contains(err.Error(), "forbidden") {
			t.Errorf("kip sessions play in another namespace = %v, want forbidden", err)
		}
	})

	t.Run("verify", func(t *testing.T) {
		if out, err := kipSessions(t, "verify", files[0]); err != nil || !strings.Contains(out, "is whole and sealed") {
			t.Fatalf("kip sessions verify %s = %q, %v", files[0], out, err)
		}
		data, err := os.ReadFile(files[0])
		if err != nil {
			t.Fatal(err)
		}
		i := bytes.Index(data, []byte(marker))
		if i < 0 {
			t.Fatal("the recording does not hold the command's output")
		}
		edited := slices.Clone(data)
		edited[i] = 'R'
		if err := os.WriteFile(files[0], edited, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := kipSessions(t, "verify", files[0]); err == nil || !strings.Contains(err.Error(), "FAILED") {
			t.Errorf("kip sessions verify of a recording with one byte changed = %v, want FAILED", err)
		}
		keyFiles, _ := filepath.Glob(filepath.Join(dir, "keys", "*.pub"))
		if _, err := kipSessions(t, "verify", "--kubeconfig", readerConfig, "-n", ns, "--key", keyFiles[0], id); err == nil {
			t.Error("kip sessions verify of the changed recording read from kip passed")
		}
	})
}

// kipSessions runs `kip sessions args` as the kip command does, and
// returns its stdout.
func kipSessions(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := command.NewRoot()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"sessions"}, args...))
	err := root.Execute()
	return out.String(), err
}

func sessionsClient(t *testing.T, kubeconfig string) *sessionsapi.Client {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	c, err := sessionsapi.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSessionsAPIWithoutRecording proves that a kip that records nothing
// answers the sessions API itself with a 404 that says so, rather than
// forwarding it to an upstream that knows nothing of the group.
func TestSessionsAPIWithoutRecording(t *testing.T) {
	ns := createNamespace(t)
	reader := harness.UniqueName("auditor")
	grant(t, ns, userSubject(reader), sessionsReaderRules...)
	kipURL := harness.StartInProcess(t, stack)
	c := sessionsClient(t, kubeconfigAt(t, kipURL, reader))
	harness.Eventually(t, 30*time.Second, func() error {
		_, err := c.List(context.Background(), ns, sessions.Filter{})
		if !apierrors.IsNotFound(err) || !strings.Contains(err.Error(), "records no sessions") {
			return errorf("list with recording off = %v, want kip's 404", err)
		}
		return nil
	})
}
