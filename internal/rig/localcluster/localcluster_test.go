package localcluster_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kip-proxy/kip/internal/rig/binaries"
	"github.com/kip-proxy/kip/internal/rig/localcluster"
	"github.com/kip-proxy/kip/internal/rig/pki"
)

// TestCluster starts a real control plane, checks what kip relies on, then
// restarts the API server as the upstream-down tests do. The first run
// builds the binaries, which takes minutes; run with -timeout 30m then.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and kube-apiserver")
	}
	ctx := t.Context()
	log := testLog{t}
	bins, err := binaries.Ensure(ctx, binaries.Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(t.TempDir(), "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := localcluster.Start(ctx, localcluster.Options{Binaries: bins, Log: log, AuditPolicyFile: policy})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
		if _, err := os.Stat(c.Dir); !os.IsNotExist(err) {
			t.Errorf("%s still exists after Stop (%v)", c.Dir, err)
		}
	})

	admin := kubernetes.NewForConfigOrDie(c.AdminConfig)
	t.Run("version", func(t *testing.T) {
		assertVersion(t, admin)
	})

	t.Run("audit log", func(t *testing.T) {
		// The version request above was answered, so its event is written:
		// the log backend writes in the request, before it completes.
		data, err := os.ReadFile(c.AuditLogPath)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), `"requestURI":"/version"`) || !strings.Contains(string(data), `"username":"kip-admin"`) {
			t.Errorf("the audit log %s shows no /version request by kip-admin:\n%s", c.AuditLogPath, data)
		}
	})

	t.Run("admin kubeconfig", func(t *testing.T) {
		cfg, err := clientcmd.BuildConfigFromFlags("", c.AdminKubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		assertIdentity(t, cfg, "kip-admin", "system:masters")
	})

	t.Run("user signed by ClientCA", func(t *testing.T) {
		cfg, err := c.UserConfig("alice", "dev")
		if err != nil {
			t.Fatal(err)
		}
		assertIdentity(t, cfg, "alice", "dev")
	})

	t.Run("client CA is published", func(t *testing.T) {
		// kube-apiserver writes the ConfigMap from a post-start hook that
		// may still be retrying; give it a moment.
		var got string
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			cm, err := admin.CoreV1().ConfigMaps("kube-system").Get(ctx, "extension-apiserver-authentication", metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			got = cm.Data["client-ca-file"]
			return got != "", nil
		})
		if err != nil {
			t.Fatalf("client-ca-file never appeared: %v", err)
		}
		if strings.TrimSpace(got) != strings.TrimSpace(string(c.ClientCA.CertPEM)) {
			t.Errorf("client-ca-file =\n%s\nwant ClientCA.CertPEM\n%s", got, c.ClientCA.CertPEM)
		}
	})

	t.Run("kubeconfig for another server", func(t *testing.T) {
		// kip will be the server in real use; here the cluster stands in.
		cert, key, err := c.ClientCA.IssueClient(pki.ClientCertRequest{CommonName: "bob"})
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "bob.kubeconfig")
		if err := localcluster.WriteKubeconfig(path, c.URL, c.ServingCAPEM, cert, key); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("kubeconfig mode: %v %v, want 0600: it holds a private key", fi.Mode(), err)
		}
		cfg, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			t.Fatal(err)
		}
		assertIdentity(t, cfg, "bob")
	})

	t.Run("restart API server", func(t *testing.T) {
		if err := c.StopAPIServer(); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.Discovery().ServerVersion(); err == nil {
			t.Fatal("API server still answers after StopAPIServer")
		}
		if err := c.StartAPIServer(ctx); err != nil {
			t.Fatal(err)
		}
		assertVersion(t, admin)
		// The data lives in etcd, which kept running.
		if _, err := admin.CoreV1().ConfigMaps("kube-system").Get(ctx, "extension-apiserver-authentication", metav1.GetOptions{}); err != nil {
			t.Errorf("after restart: %v", err)
		}
	})
}

func assertVersion(t *testing.T, client kubernetes.Interface) {
	t.Helper()
	v, err := client.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v.GitVersion != binaries.KubeVersion {
		t.Errorf("/version reports %s, want %s", v.GitVersion, binaries.KubeVersion)
	}
}

// assertIdentity asks the API server who cfg logs in as.
func assertIdentity(t *testing.T, cfg *rest.Config, user string, groups ...string) {
	t.Helper()
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	review, err := client.AuthenticationV1().SelfSubjectReviews().Create(t.Context(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	info := review.Status.UserInfo
	if info.Username != user {
		t.Errorf("user = %q, want %q", info.Username, user)
	}
	for _, g := range append(groups, "system:authenticated") {
		if !slices.Contains(info.Groups, g) {
			t.Errorf("groups = %v, want %s among them", info.Groups, g)
		}
	}
}

// testLog sends progress lines to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
