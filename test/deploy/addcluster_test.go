package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdv1 "k8s.io/client-go/tools/clientcmd/api/v1"
	"k8s.io/utils/ptr"
)

// The names of TestAddClusterScript: the package's one kube-apiserver is
// both the target cluster (kip's account in addTarget) and kip's own
// cluster (the cluster Secret in addHome).
const (
	addTarget  = "kip-add-target"
	addHome    = "kip-add-home"
	addAccount = "kip-add-test"
	addCluster = "edge-1"
)

// TestAddClusterScript runs hack/add-cluster.sh with /bin/sh and the
// tested kubectl, and checks every object it creates: kip's ServiceAccount
// in the target with deploy/rbac.yaml's rights and nothing more, its token,
// and the labelled cluster Secret whose kubeconfig signs in as that
// ServiceAccount and carries the access policy. Run again, it updates the
// Secret and with --rotate replaces the token.
func TestAddClusterScript(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane")
	}
	c := cluster(t)
	admin := adminClient(t)
	createNamespace(t, addHome)
	t.Cleanup(func() { deleteAddClusterObjects(admin) })
	tokens := standInForTokenController(t, admin, addTarget, addAccount+"-token")

	out, err := runAddCluster(t, "--name", addCluster, "--kubeconfig", c.AdminKubeconfig, "--kip-kubeconfig", c.AdminKubeconfig,
		"--namespace", addTarget, "--service-account", addAccount, "--kip-namespace", addHome,
		"--groups", "sre,platform admins", "--expression", `'on-call' in user.groups && user.username != "a\\b"`)
	if err != nil {
		t.Fatalf("add-cluster.sh: %v\n%s\ntoken controller stand-in: %v", err, out, tokens.err())
	}

	checkTargetAccount(t, admin)
	kc := clusterSecretKubeconfig(t, admin)
	if kc.server != c.URL || !bytes.Equal(kc.caPEM, c.ServingCAPEM) {
		t.Errorf("the kubeconfig names server %s with CA %q, want %s with its serving CA", kc.server, kc.caPEM, c.URL)
	}
	want := accessPolicy{Groups: []string{"sre", "platform admins"}, Expression: `'on-call' in user.groups && user.username != "a\\b"`}
	if !reflect.DeepEqual(kc.access, &want) {
		t.Errorf("kip.dev/access extension %+v, want %+v", kc.access, want)
	}
	checkTokenRights(t, kc.restConfig)

	t.Run("run again with --rotate and no policy", func(t *testing.T) {
		out, err := runAddCluster(t, "--name", addCluster, "--kubeconfig", c.AdminKubeconfig, "--kip-kubeconfig", c.AdminKubeconfig,
			"--namespace", addTarget, "--service-account", addAccount, "--kip-namespace", addHome, "--rotate")
		if err != nil {
			t.Fatalf("add-cluster.sh --rotate: %v\n%s\ntoken controller stand-in: %v", err, out, tokens.err())
		}
		checkTargetAccount(t, admin)
		rotated := clusterSecretKubeconfig(t, admin)
		if rotated.access != nil {
			t.Errorf("the updated kubeconfig keeps the access policy %+v", rotated.access)
		}
		if rotated.token == kc.token {
			t.Fatal("--rotate kept the old token")
		}
		checkTokenRights(t, rotated.restConfig)
		// kube-apiserver caches a token's review for 10 s.
		old := kubernetes.NewForConfigOrDie(kc.restConfig)
		err = wait.PollUntilContextTimeout(context.Background(), 500*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			_, err := old.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
			return apierrors.IsUnauthorized(err), nil
		})
		if err != nil {
			t.Errorf("the token replaced by --rotate still signs in after 30 s, want 401")
		}
	})

	t.Run("refused arguments", func(t *testing.T) {
		base := []string{"--kubeconfig", c.AdminKubeconfig, "--kip-kubeconfig", c.AdminKubeconfig,
			"--namespace", addTarget, "--service-account", addAccount, "--kip-namespace", addHome}
		tests := []struct {
			name    string
			args    []string
			wantErr string
		}{
			{name: "no name", args: base, wantErr: "--name is required"},
			{name: "capitals", args: append([]string{"--name", "Edge-2"}, base...), wantErr: "not a DNS label"},
			{name: "a slash", args: append([]string{"--name", "edge/../2"}, base...), wantErr: "not a DNS label"},
			{name: "a newline", args: append([]string{"--name", "edge\n2"}, base...), wantErr: "not a DNS label"},
			{name: "an empty group", args: append([]string{"--name", "edge-2", "--groups", "sre,,ops"}, base...), wantErr: "empty group"},
			{name: "a two-line expression", args: append([]string{"--name", "edge-2", "--expression", "true\n|| true"}, base...), wantErr: "one line"},
			{name: "a plain-HTTP server", args: append([]string{"--name", "edge-2", "--server", "http://10.0.0.1"}, base...), wantErr: "not https"},
			{name: "an unknown option", args: append([]string{"--name", "edge-2", "--context-name", "x"}, base...), wantErr: "unknown option"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				out, err := runAddCluster(t, tt.args...)
				if err == nil || !strings.Contains(out, tt.wantErr) {
					t.Errorf("add-cluster.sh %q: %v\n%s\nwant a failure saying %q", tt.args, err, out, tt.wantErr)
				}
			})
		}
		secrets, err := admin.CoreV1().Secrets(addHome).List(context.Background(), metav1.ListOptions{LabelSelector: "kip.dev/cluster"})
		if err != nil {
			t.Fatal(err)
		}
		if len(secrets.Items) != 1 || secrets.Items[0].Name != "kip-cluster-"+addCluster {
			t.Errorf("cluster Secrets in %s: %v, want only kip-cluster-%s", addHome, secretNames(secrets.Items), addCluster)
		}
	})
}

// runAddCluster runs the script with the tested kubectl and returns its
// combined output.
func runAddCluster(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", append([]string{filepath.Join(env.root, "hack", "add-cluster.sh")}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECTL="+env.bins.Kubectl, "HOME="+t.TempDir(), "KUBECONFIG=/nonexistent", "TMPDIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// checkTargetAccount checks kip's account in the target: the
// ServiceAccount, a ClusterRole with exactly deploy/rbac.yaml's kip-proxy
// rules bound to it alone, the client-CA reader binding, and the token
// Secret.
func checkTargetAccount(t *testing.T, admin kubernetes.Interface) {
	t.Helper()
	ctx := context.Background()
	if _, err := admin.CoreV1().ServiceAccounts(addTarget).Get(ctx, addAccount, metav1.GetOptions{}); err != nil {
		t.Errorf("ServiceAccount %s/%s: %v", addTarget, addAccount, err)
	}
	deployed := decodeObjectsFile(t, filepath.Join(env.root, "deploy", "rbac.yaml"))
	wantRules := rules(t, find(t, deployed, "ClusterRole", "kip-proxy"))
	if cr, err := admin.RbacV1().ClusterRoles().Get(ctx, addAccount, metav1.GetOptions{}); err != nil {
		t.Errorf("ClusterRole %s: %v", addAccount, err)
	} else if !reflect.DeepEqual(cr.Rules, wantRules) {
		t.Errorf("ClusterRole %s has rules %+v, want deploy/rbac.yaml's %+v", addAccount, cr.Rules, wantRules)
	}
	subjects := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: addAccount, Namespace: addTarget}}
	if crb, err := admin.RbacV1().ClusterRoleBindings().Get(ctx, addAccount, metav1.GetOptions{}); err != nil {
		t.Errorf("ClusterRoleBinding %s: %v", addAccount, err)
	} else if crb.RoleRef != (rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: addAccount}) || !reflect.DeepEqual(crb.Subjects, subjects) {
		t.Errorf("ClusterRoleBinding %s binds %+v to %+v, want ClusterRole %s to the ServiceAccount alone", addAccount, crb.RoleRef, crb.Subjects, addAccount)
	}
	if rb, err := admin.RbacV1().RoleBindings("kube-system").Get(ctx, addAccount+"-client-ca-reader", metav1.GetOptions{}); err != nil {
		t.Errorf("RoleBinding kube-system/%s-client-ca-reader: %v", addAccount, err)
	} else if rb.RoleRef.Name != "extension-apiserver-authentication-reader" || !reflect.DeepEqual(rb.Subjects, subjects) {
		t.Errorf("RoleBinding %s binds %+v to %+v, want the client-CA reader to the ServiceAccount alone", rb.Name, rb.RoleRef, rb.Subjects)
	}
	s, err := admin.CoreV1().Secrets(addTarget).Get(ctx, addAccount+"-token", metav1.GetOptions{})
	switch {
	case err != nil:
		t.Errorf("token Secret: %v", err)
	case s.Type != corev1.SecretTypeServiceAccountToken || s.Annotations[corev1.ServiceAccountNameKey] != addAccount:
		t.Errorf("token Secret of type %s for ServiceAccount %q, want %s for %s", s.Type, s.Annotations[corev1.ServiceAccountNameKey], corev1.SecretTypeServiceAccountToken, addAccount)
	}
}

// accessPolicy is the kip.dev/access extension of /work/spec/gateway.md.
type accessPolicy struct {
	Groups     []string `json:"groups,omitempty"`
	Expression string   `json:"expression,omitempty"`
}

// clusterKubeconfig is what the cluster Secret tells kip.
type clusterKubeconfig struct {
	server, token string
	caPEM         []byte
	access        *accessPolicy
	restConfig    *rest.Config
}

// clusterSecretKubeconfig reads the cluster Secret in addHome: its label,
// its one key, and the kubeconfig in it, as client-go loads it and as the
// YAML reads (for the extension).
func clusterSecretKubeconfig(t *testing.T, admin kubernetes.Interface) clusterKubeconfig {
	t.Helper()
	s, err := admin.CoreV1().Secrets(addHome).Get(context.Background(), "kip-cluster-"+addCluster, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the cluster Secret: %v", err)
	}
	if s.Labels["kip.dev/cluster"] != addCluster {
		t.Errorf("the cluster Secret's labels %v, want kip.dev/cluster=%s", s.Labels, addCluster)
	}
	if len(s.Data) != 1 || len(s.Data["kubeconfig"]) == 0 {
		t.Fatalf("the cluster Secret has keys %v, want kubeconfig alone", slices.Collect(maps.Keys(s.Data)))
	}
	data := s.Data["kubeconfig"]
	var out clusterKubeconfig
	if out.restConfig, err = clientcmd.RESTConfigFromKubeConfig(data); err != nil {
		t.Fatalf("client-go cannot load the cluster Secret's kubeconfig: %v\n%s", err, data)
	}
	out.restConfig.QPS, out.restConfig.Burst = -1, 0
	out.server, out.caPEM, out.token = out.restConfig.Host, out.restConfig.CAData, out.restConfig.BearerToken

	var cfg clientcmdv1.Config
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Clusters) != 1 || cfg.Clusters[0].Name != addCluster || cfg.CurrentContext != addCluster {
		t.Fatalf("the kubeconfig has clusters %+v and current context %q, want one named %s and current", cfg.Clusters, cfg.CurrentContext, addCluster)
	}
	for _, e := range cfg.Clusters[0].Cluster.Extensions {
		if e.Name != "kip.dev/access" {
			t.Errorf("the kubeconfig has extension %s, want kip.dev/access only", e.Name)
			continue
		}
		out.access = &accessPolicy{}
		if err := json.Unmarshal(e.Extension.Raw, out.access); err != nil {
			t.Fatalf("the kip.dev/access extension %s: %v", e.Extension.Raw, err)
		}
	}
	return out
}

// checkTokenRights signs in with the cluster Secret's token: it must be
// kip's ServiceAccount, allowed what deploy/rbac.yaml grants and refused
// the rest.
func checkTokenRights(t *testing.T, cfg *rest.Config) {
	t.Helper()
	client := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	r, err := client.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("SelfSubjectReview with the cluster Secret's token: %v", err)
	}
	if want := "system:serviceaccount:" + addTarget + ":" + addAccount; r.Status.UserInfo.Username != want {
		t.Errorf("the token signs in as %q, want %s", r.Status.UserInfo.Username, want)
	}
	tests := []struct {
		name    string
		attrs   authorizationv1.ResourceAttributes
		allowed bool
	}{
		{"impersonate a user", authorizationv1.ResourceAttributes{Verb: "impersonate", Resource: "users", Name: "alice"}, true},
		{"impersonate system:masters", authorizationv1.ResourceAttributes{Verb: "impersonate", Resource: "groups", Name: "system:masters"}, true},
		{"impersonate an extra", authorizationv1.ResourceAttributes{Verb: "impersonate", Group: "authentication.k8s.io", Resource: "userextras", Subresource: "credential-id"}, true},
		{"create a TokenReview", authorizationv1.ResourceAttributes{Verb: "create", Group: "authentication.k8s.io", Resource: "tokenreviews"}, true},
		{"create a SubjectAccessReview", authorizationv1.ResourceAttributes{Verb: "create", Group: "authorization.k8s.io", Resource: "subjectaccessreviews"}, true},
		{"read the client CA", authorizationv1.ResourceAttributes{Verb: "get", Namespace: "kube-system", Resource: "configmaps", Name: "extension-apiserver-authentication"}, true},
		{"read another ConfigMap of kube-system", authorizationv1.ResourceAttributes{Verb: "get", Namespace: "kube-system", Resource: "configmaps", Name: "kube-root-ca.crt"}, false},
		{"read its own token Secret", authorizationv1.ResourceAttributes{Verb: "get", Namespace: addTarget, Resource: "secrets", Name: addAccount + "-token"}, false},
		{"read the cluster Secrets", authorizationv1.ResourceAttributes{Verb: "list", Namespace: addHome, Resource: "secrets"}, false},
		{"list pods", authorizationv1.ResourceAttributes{Verb: "list", Resource: "pods"}, false},
		{"create a pod", authorizationv1.ResourceAttributes{Verb: "create", Namespace: addTarget, Resource: "pods"}, false},
		{"edit its own role", authorizationv1.ResourceAttributes{Verb: "update", Group: "rbac.authorization.k8s.io", Resource: "clusterroles", Name: addAccount}, false},
	}
	for _, tt := range tests {
		review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &tt.attrs}}
		got, err := client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("%s: SelfSubjectAccessReview: %v", tt.name, err)
		}
		if got.Status.Allowed != tt.allowed {
			t.Errorf("%s: allowed %v, want %v (%s)", tt.name, got.Status.Allowed, tt.allowed, got.Status.Reason)
		}
	}
}

// tokenController stands in for kube-controller-manager's token
// controller, which the test control plane does not run: it fills each
// new ServiceAccount token Secret with a token of its ServiceAccount bound
// to that Secret (so deleting the Secret revokes it, as with the
// controller's tokens) and the cluster's CA.
type tokenController struct {
	mu      sync.Mutex
	lastErr error
}

func (tc *tokenController) err() error {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.lastErr
}

func standInForTokenController(t *testing.T, admin kubernetes.Interface, ns, name string) *tokenController {
	t.Helper()
	tc := &tokenController{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	caPEM := cluster(t).ServingCAPEM
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if err := fillToken(ctx, admin, ns, name, caPEM); err != nil {
				tc.mu.Lock()
				tc.lastErr = err
				tc.mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return tc
}

func fillToken(ctx context.Context, admin kubernetes.Interface, ns, name string, caPEM []byte) error {
	s, err := admin.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) || (err == nil && len(s.Data[corev1.ServiceAccountTokenKey]) > 0) {
		return nil
	}
	if err != nil {
		return err
	}
	tr, err := admin.CoreV1().ServiceAccounts(ns).CreateToken(ctx, s.Annotations[corev1.ServiceAccountNameKey], &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: ptr.To[int64](3600),
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Secret", APIVersion: "v1", Name: s.Name, UID: s.UID},
	}}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	if s.Data == nil {
		s.Data = map[string][]byte{}
	}
	s.Data[corev1.ServiceAccountTokenKey] = []byte(tr.Status.Token)
	s.Data[corev1.ServiceAccountRootCAKey] = caPEM
	s.Data[corev1.ServiceAccountNamespaceKey] = []byte(ns)
	_, err = admin.CoreV1().Secrets(ns).Update(ctx, s, metav1.UpdateOptions{})
	return err
}

// deleteAddClusterObjects removes what the script created outside the
// test's namespaces.
func deleteAddClusterObjects(admin kubernetes.Interface) {
	ctx := context.Background()
	_ = admin.CoreV1().Namespaces().Delete(ctx, addTarget, metav1.DeleteOptions{})
	_ = admin.RbacV1().ClusterRoleBindings().Delete(ctx, addAccount, metav1.DeleteOptions{})
	_ = admin.RbacV1().ClusterRoles().Delete(ctx, addAccount, metav1.DeleteOptions{})
	_ = admin.RbacV1().RoleBindings("kube-system").Delete(ctx, addAccount+"-client-ca-reader", metav1.DeleteOptions{})
}

func secretNames(secrets []corev1.Secret) []string {
	var out []string
	for _, s := range secrets {
		out = append(out, s.Name)
	}
	return out
}
