package gateway

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/kip-proxy/kip/internal/revocation"
	"github.com/kip-proxy/kip/internal/rig/harness"
	"github.com/kip-proxy/kip/internal/rig/pki"
)

// TestRevocationAtEveryCluster: a gateway whose home cluster (alpha) holds
// the revocation list, read with kip's own credential there and
// deploy/rbac.yaml's Role, refuses a revoked user at every cluster within
// 5 s, ends their watch on another cluster (beta), and keeps serving a
// bystander. A certificate issued after the entry's time is accepted.
func TestRevocationAtEveryCluster(t *testing.T) {
	home := gw.members[alpha]
	ns := namespaceOn(t, alpha, beta)
	k := startHomeKip(t, home, ns)

	leaver, bystander := harness.UniqueName("leaver"), harness.UniqueName("bystander")
	for _, name := range []string{alpha, beta} {
		grant(t, name, ns, userSubject(leaver), readConfigMaps)
		grant(t, name, ns, userSubject(bystander), readConfigMaps)
	}
	leaverCfg := kipUser(t, k, leaver)
	for _, name := range []string{alpha, beta} {
		harness.Eventually(t, 10*time.Second, func() error { return listConfigMaps(at(leaverCfg, k, name), ns) })
	}
	w, err := kubernetes.NewForConfigOrDie(at(leaverCfg, k, beta)).CoreV1().ConfigMaps(ns).Watch(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	watchEnded := make(chan struct{})
	go func() {
		defer close(watchEnded)
		for range w.ResultChan() {
		}
	}()

	now := time.Now()
	entry := revocation.Entry{Kind: revocation.KindUser, Value: leaver, Before: now, Expires: now.Add(time.Hour), Created: now}
	if _, err := (revocation.Source{Client: home.admin, Namespace: ns, Name: "kip-revocations"}).Add(context.Background(), entry, now); err != nil {
		t.Fatal(err)
	}
	written := time.Now()
	for _, name := range []string{alpha, beta} {
		harness.Eventually(t, 5*time.Second, func() error {
			if err := listConfigMaps(at(leaverCfg, k, name), ns); !apierrors.IsUnauthorized(err) {
				return errorf("the revoked user at %s: %v, want 401", name, err)
			}
			return nil
		})
		if err := listConfigMaps(at(kipUser(t, k, bystander), k, name), ns); err != nil {
			t.Errorf("the bystander at %s: %v", name, err)
		}
	}
	select {
	case <-watchEnded:
		t.Logf("refused at both clusters and the watch at %s ended %v after the write", beta, time.Since(written).Round(time.Millisecond))
	case <-time.After(time.Until(written.Add(5 * time.Second))):
		t.Errorf("the revoked user's watch at %s was still open 5 s after the write", beta)
	}

	// Certificates count whole seconds: one issued a second later is fresh.
	time.Sleep(time.Until(entry.Before.Add(1100 * time.Millisecond)))
	if err := listConfigMaps(at(kipUser(t, k, leaver), k, beta), ns); err != nil {
		t.Errorf("a certificate issued after the entry: %v", err)
	}
}

// startHomeKip starts a gateway kip in front of the same clusters, with
// home as its home cluster, reached with kip's own credential there, and
// the revocation list in ns.
func startHomeKip(t *testing.T, home *member, ns string) *harness.Kip {
	t.Helper()
	ctx := context.Background()
	role, err := harness.DeployedRole("kip-revocations")
	if err != nil {
		t.Fatal(err)
	}
	role.Namespace = ns
	if _, err := home.admin.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{userSubject(home.kipCred.user)},
	}
	if _, err := home.admin.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kubeconfig, err := yaml.Marshal(entryConfig(home, home.kipCred, nil))
	if err != nil {
		t.Fatal(err)
	}
	homeFile := filepath.Join(dir, "home.kubeconfig")
	if err := os.WriteFile(homeFile, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	opts := gw.another
	opts.Name, opts.Dir = "kip-home", dir
	opts.Args = append(opts.Args[:len(opts.Args):len(opts.Args)], "--kubeconfig="+homeFile, "--revocation-configmap="+ns+"/kip-revocations")
	k, err := harness.NewKip(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.Stop(10 * time.Second) })
	return k
}

// kipUser is a fresh certificate from kip's signer for user, at kip k.
func kipUser(t *testing.T, k *harness.Kip, user string) *rest.Config {
	t.Helper()
	certPEM, keyPEM, err := gw.signer.IssueClient(pki.ClientCertRequest{CommonName: user})
	if err != nil {
		t.Fatal(err)
	}
	return &rest.Config{TLSClientConfig: rest.TLSClientConfig{CAData: k.CAPEM, CertData: certPEM, KeyData: keyPEM}}
}

// at is cfg addressed to cluster behind kip k.
func at(cfg *rest.Config, k *harness.Kip, cluster string) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Host = k.URL + "/clusters/" + cluster
	return c
}

func listConfigMaps(cfg *rest.Config, ns string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := kubernetes.NewForConfigOrDie(cfg).CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	return err
}
