package deploy

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"

	"github.com/kip-proxy/kip/internal/rig/harness"
	"github.com/kip-proxy/kip/internal/rig/localcluster"
	"github.com/kip-proxy/kip/internal/rig/pki"
	"github.com/kip-proxy/kip/internal/rig/testnode"
)

// The identities the test signs in as: one from the token webhook, one
// from the OIDC issuer (its subject, with the prefix of chartValues).
const (
	webhookToken = "chart-webhook-token"
	webhookUser  = "chart-webhook-user"
	oidcSubject  = "chart-oidc-user"
	oidcUser     = "oidc:" + oidcSubject
)

// chartValues are the values of an install that trusts iss and wh, with a
// config file that kip decodes strictly.
func chartValues(iss *issuer, wh *webhook) string {
	return fmt.Sprintf(`
config:
  apiVersion: kip.dev/v1alpha1
  kind: KipConfiguration
  authentication: {tokenCacheTTL: 30s}
  limits: {maxRequestsInFlight: 300}
authentication:
  config:
    apiVersion: apiserver.config.k8s.io/v1
    kind: AuthenticationConfiguration
    jwt:
    - issuer:
        url: %q
        audiences: [%s]
        certificateAuthority: %q
      claimMappings:
        username: {claim: sub, prefix: "oidc:"}
tokenWebhook:
  kubeconfig: %q
`, iss.URL, audience, iss.caPEM, wh.kubeconfig)
}

// TestKipRunsWithTheChartsRights applies the chart's ServiceAccount and
// RBAC objects for real, runs the image's kip binary with the Deployment's
// arguments and mounted files as that ServiceAccount, and passes the main
// flows through it: the credential exchange, get, watch and exec.
func TestKipRunsWithTheChartsRights(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane and kip")
	}
	c := cluster(t)
	ns := createNamespace(t, "kip-chart-run")
	iss := startIssuer(t)
	wh := startWebhook(t, webhookToken, authenticationv1.UserInfo{Username: webhookUser, UID: "chart-uid-1", Groups: []string{"chart-users"}})
	objs := mustRender(t, chartValues(iss, wh), ns)
	applyRights(t, objs)
	kip := startChartKip(t, c, objs)

	grantUsers(t, ns, webhookUser, oidcUser)
	node := startNode(t)
	runPod(t, ns, node, "shell")

	var webhookCfg, oidcCfg *rest.Config
	t.Run("exchange", func(t *testing.T) {
		webhookCfg = exchange(t, kip, webhookToken)
		oidcCfg = exchange(t, kip, iss.token(t, oidcSubject))
		for user, cfg := range map[string]*rest.Config{webhookUser: webhookCfg, oidcUser: oidcCfg} {
			if got := whoami(t, cfg); got != user {
				t.Errorf("the exchanged certificate of %s is seen upstream as %q", user, got)
			}
		}
	})
	if webhookCfg == nil || oidcCfg == nil {
		t.FailNow()
	}
	t.Run("bearer OIDC token", func(t *testing.T) {
		cfg := rest.CopyConfig(kip)
		cfg.BearerToken = iss.token(t, oidcSubject)
		if got := whoami(t, cfg); got != oidcUser {
			t.Errorf("an ID token as bearer token is seen upstream as %q, want %q", got, oidcUser)
		}
	})
	t.Run("get", func(t *testing.T) {
		pod, err := clientFor(t, webhookCfg).CoreV1().Pods(ns).Get(context.Background(), "shell", metav1.GetOptions{})
		if err != nil || pod.Spec.NodeName != node.Name() {
			t.Fatalf("get pod through kip: %v, %v", pod, err)
		}
	})
	t.Run("watch", func(t *testing.T) { checkWatch(t, oidcCfg, ns) })
	t.Run("exec", func(t *testing.T) {
		kubeconfig := writeKubeconfig(t, webhookCfg)
		out, err := exec.Command(env.bins.Kubectl, "--kubeconfig", kubeconfig, "exec", "-n", ns, "shell", "--", "echo", "through the chart's kip").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "through the chart's kip" {
			t.Errorf("kubectl exec through kip: %v\n%s", err, out)
		}
	})
}

// applyRights creates, for real, the chart's ServiceAccount and every RBAC
// object: the only rights kip will have.
func applyRights(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	a := newApplier(t)
	for _, o := range objs {
		switch o.GetKind() {
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
		default:
			continue
		}
		if _, err := a.apply(t, o, false); err != nil {
			t.Fatalf("applying %s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
	}
}

// startChartKip runs kip as the chart's Deployment would: its arguments,
// the files of its volumes (from the rendered ConfigMaps and Secrets, and a
// fresh serving certificate), and a token of its ServiceAccount. Only the
// addresses are changed, to free loopback ports. It returns a client
// configuration for kip without credentials.
func startChartKip(t *testing.T, c *localcluster.Cluster, objs []*unstructured.Unstructured) *rest.Config {
	t.Helper()
	bin := kipBinary(t)
	dir := t.TempDir()
	d := deployment(t, objs)
	spec := d.Spec.Template.Spec
	servingCA := pki.NewCAForTest(t, "kip chart test serving CA", time.Hour)
	mounts := spec.Containers[0].VolumeMounts
	for _, m := range mounts {
		writeVolume(t, volume(t, spec.Volumes, m.Name), objs, servingCA, filepath.Join(dir, m.MountPath))
	}
	var args []string
	for _, a := range spec.Containers[0].Args {
		args = append(args, localPath(a, mounts, dir))
	}
	if len(args) == 0 || args[0] != "serve" {
		t.Fatalf("the chart's kip arguments %q do not start with serve", args)
	}
	kip := harness.StartKip(t, harness.KipOptions{
		Binary: bin, Dir: dir, Args: args[1:], CAPEM: servingCA.CertPEM, ReadyTimeout: 2 * time.Minute,
		Kubeconfig: serviceAccountKubeconfig(t, c, d.Namespace, spec.ServiceAccountName, dir),
	})
	return kip.Config()
}

// localPath turns a --flag=path argument that names a file in a volume
// into the path of that file under dir.
func localPath(arg string, mounts []corev1.VolumeMount, dir string) string {
	flag, path, ok := strings.Cut(arg, "=")
	if !ok {
		return arg
	}
	for _, m := range mounts {
		if strings.HasPrefix(path, m.MountPath+"/") {
			return flag + "=" + filepath.Join(dir, path)
		}
	}
	return arg
}

func volume(t *testing.T, volumes []corev1.Volume, name string) corev1.Volume {
	t.Helper()
	for _, v := range volumes {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("the Deployment mounts volume %s, which it does not define", name)
	return corev1.Volume{}
}

// writeVolume writes what the kubelet would mount for v into dir: the
// rendered ConfigMap's or Secret's keys, or, for the serving certificate
// Secret that the operator provides, a certificate from servingCA.
func writeVolume(t *testing.T, v corev1.Volume, objs []*unstructured.Unstructured, servingCA *pki.CA, dir string) {
	t.Helper()
	files := map[string][]byte{}
	switch {
	case v.EmptyDir != nil:
	case v.ConfigMap != nil:
		data, _, _ := unstructured.NestedStringMap(find(t, objs, "ConfigMap", v.ConfigMap.Name).Object, "data")
		for k, s := range data {
			files[k] = []byte(s)
		}
	case v.Secret != nil && v.Name == "serving-cert":
		certPEM, keyPEM, err := servingCA.IssueServing([]string{"127.0.0.1"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		files[corev1.TLSCertKey], files[corev1.TLSPrivateKeyKey] = certPEM, keyPEM
	case v.Secret != nil:
		var s corev1.Secret
		fromUnstructured(t, find(t, objs, "Secret", v.Secret.SecretName), &s)
		for k, str := range s.StringData {
			files[k] = []byte(str)
		}
		for k, b := range s.Data {
			files[k] = b
		}
	default:
		t.Fatalf("volume %s is of a kind the test cannot stand in for", v.Name)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// serviceAccountKubeconfig is what kip would find in a pod: the API
// server's address and CA, and a token of the ServiceAccount from the
// TokenRequest API in a file that client-go rereads.
func serviceAccountKubeconfig(t *testing.T, c *localcluster.Cluster, ns, sa, dir string) string {
	t.Helper()
	tr, err := adminClient(t).CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), sa,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("requesting a token for ServiceAccount %s/%s: %v", ns, sa, err)
	}
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(tr.Status.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["cluster"] = &clientcmdapi.Cluster{Server: c.URL, CertificateAuthorityData: c.ServingCAPEM}
	cfg.AuthInfos["kip"] = &clientcmdapi.AuthInfo{TokenFile: tokenFile}
	cfg.Contexts["kip"] = &clientcmdapi.Context{Cluster: "cluster", AuthInfo: "kip"}
	cfg.CurrentContext = "kip"
	path := filepath.Join(dir, "serviceaccount.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// grantUsers lets users read, watch and exec into the Pods of ns.
func grantUsers(t *testing.T, ns string, users ...string) {
	t.Helper()
	admin := adminClient(t)
	ctx := context.Background()
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "chart-users", Namespace: ns},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"pods/exec"}, Verbs: []string{"create", "get"}},
		},
	}
	if _, err := admin.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "chart-users", Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
	}
	for _, u := range users {
		binding.Subjects = append(binding.Subjects, rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: u})
	}
	if _, err := admin.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Pods need the namespace's default ServiceAccount, which only
	// kube-controller-manager would create.
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns}}
	if _, err := admin.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func startNode(t *testing.T) *testnode.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := testnode.Start(ctx, testnode.Options{Client: adminClient(t), Name: "kip-chart-node"})
	if err != nil {
		t.Fatalf("starting the test node: %v", err)
	}
	t.Cleanup(n.Stop)
	return n
}

// runPod runs a Pod named name on node and waits until it is running.
func runPod(t *testing.T, ns string, node *testnode.Node, name string) {
	t.Helper()
	pods := adminClient(t).CoreV1().Pods(ns)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			NodeName:                     node.Name(),
			AutomountServiceAccountToken: ptr.To(false),
			Containers:                   []corev1.Container{{Name: "main", Image: "testnode.invalid/ignored", Command: []string{"sleep", "600"}}},
		},
	}
	ctx := context.Background()
	if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pods.Delete(context.Background(), name, metav1.DeleteOptions{}) })
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err := pods.Get(ctx, name, metav1.GetOptions{})
		return err == nil && got.Status.Phase == corev1.PodRunning, nil
	})
	if err != nil {
		t.Fatalf("pod %s/%s never ran: %v", ns, name, err)
	}
}

// checkWatch watches the Pods of ns through kip and waits for one that is
// created after the watch began.
func checkWatch(t *testing.T, cfg *rest.Config, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := clientFor(t, cfg).CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("watch through kip: %v", err)
	}
	defer w.Stop()
	pods := adminClient(t).CoreV1().Pods(ns)
	watched := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "watched"},
		Spec:       corev1.PodSpec{AutomountServiceAccountToken: ptr.To(false), Containers: []corev1.Container{{Name: "main", Image: "testnode.invalid/ignored"}}},
	}
	if _, err := pods.Create(ctx, watched, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pods.Delete(context.Background(), watched.Name, metav1.DeleteOptions{}) })
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatal("the watch through kip ended before the new pod showed")
			}
			if pod, isPod := ev.Object.(*corev1.Pod); isPod && ev.Type == watch.Added && pod.Name == watched.Name {
				return
			}
		case <-ctx.Done():
			t.Fatal("the new pod never showed in the watch through kip")
		}
	}
}

// exchange trades token at kip for a client certificate, and returns a
// client configuration that uses it.
func exchange(t *testing.T, kip *rest.Config, token string) *rest.Config {
	t.Helper()
	rc, err := harness.ExchangeClient(kip)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := harness.Exchange(ctx, rc, token, nil)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	cred := out.Status.Credential
	if cred == nil {
		t.Fatalf("the exchange gave no credential: %v", ptr.Deref(out.Status.Message, ""))
	}
	cfg := rest.CopyConfig(kip)
	cfg.CertData, cfg.KeyData = []byte(cred.ClientCertificateData), []byte(cred.ClientKeyData)
	return cfg
}

// whoami is the username the upstream sees for cfg's requests through kip.
func whoami(t *testing.T, cfg *rest.Config) string {
	t.Helper()
	r, err := clientFor(t, cfg).AuthenticationV1().SelfSubjectReviews().Create(context.Background(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("SelfSubjectReview through kip: %v", err)
	}
	return r.Status.UserInfo.Username
}

func clientFor(t *testing.T, cfg *rest.Config) kubernetes.Interface {
	t.Helper()
	return harness.Client(t, cfg)
}

// writeKubeconfig writes cfg, a certificate through kip, for kubectl.
func writeKubeconfig(t *testing.T, cfg *rest.Config) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := localcluster.WriteKubeconfig(path, cfg.Host, cfg.CAData, cfg.CertData, cfg.KeyData); err != nil {
		t.Fatal(err)
	}
	return path
}
