package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/internal/rig/harness"
	"github.com/kip-proxy/kip/internal/rig/localcluster"
	"github.com/kip-proxy/kip/internal/rig/pki"
)

// httpClient reaches kip presenting cert (none when empty) over proto,
// "h2" or "http/1.1".
func (g *gateway) httpClient(cert tls.Certificate, proto string) *http.Client {
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(g.kip.CAPEM)
	cfg := &tls.Config{RootCAs: roots, NextProtos: []string{proto}, MinVersion: tls.VersionTLS12}
	if cert.Certificate != nil {
		cfg.Certificates = []tls.Certificate{cert}
	}
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: proto == "h2"}
	return &http.Client{Transport: tr, Timeout: time.Minute}
}

// answer is what kip answered to one raw request.
type answer struct {
	code  int
	proto string
	body  string
	// status is the body read as a metav1.Status, when it is one.
	status *metav1.Status
}

func (a answer) String() string { return fmt.Sprintf("%d %s: %s", a.code, a.proto, a.body) }

// get sends GET path (written to the wire as given, never cleaned) to kip,
// with a bearer token when token is set.
func get(client *http.Client, path, token string) (answer, error) {
	req, err := http.NewRequest(http.MethodGet, gw.kip.URL, nil)
	if err != nil {
		return answer{}, err
	}
	// Opaque goes on the request line byte for byte: Go neither cleans nor
	// re-escapes it. The absolute form also carries a path that starts
	// with "//", which Go would otherwise read as a host.
	req.URL.Opaque = "//" + gw.kip.Addr + path
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	a := answer{code: resp.StatusCode, proto: resp.Proto, body: string(body)}
	var s metav1.Status
	if json.Unmarshal(body, &s) == nil && s.Kind == "Status" {
		a.status = &s
	}
	return a, nil
}

// mustGet is get that fails the test when the request cannot be made.
func mustGet(t *testing.T, client *http.Client, path, token string) answer {
	t.Helper()
	a, err := get(client, path, token)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return a
}

// wantStatus fails unless a is a Status of code: the answer kip, or a
// cluster, gives to a request it refuses.
func wantStatus(t *testing.T, a answer, code int) {
	t.Helper()
	if a.code != code || a.status == nil || a.status.Code != int32(code) || a.status.Status != metav1.StatusFailure {
		t.Fatalf("got %s, want a %d Status", a, code)
	}
}

// userTLS is gateway.userTLS for a test.
func userTLS(t *testing.T, user string, groups ...string) tls.Certificate {
	t.Helper()
	cert, err := gw.userTLS(user, groups...)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// userConfig reaches cluster through kip as user in groups, with one of
// kip's own certificates.
func userConfig(t *testing.T, cluster, user string, groups ...string) *rest.Config {
	t.Helper()
	certPEM, keyPEM, err := gw.signer.IssueClient(pki.ClientCertRequest{CommonName: user, Organizations: groups})
	if err != nil {
		t.Fatal(err)
	}
	return &rest.Config{
		Host:            gw.clusterURL(cluster),
		TLSClientConfig: rest.TLSClientConfig{CAData: gw.kip.CAPEM, CertData: certPEM, KeyData: keyPEM},
	}
}

// userKubeconfig writes what a user's kubeconfig for cluster holds:
// server https://kip/clusters/<cluster> and one of kip's certificates.
func userKubeconfig(t *testing.T, cluster, user string, groups ...string) string {
	t.Helper()
	cfg := userConfig(t, cluster, user, groups...)
	path := filepath.Join(t.TempDir(), cluster+"-"+user+".kubeconfig")
	if err := localcluster.WriteKubeconfig(path, cfg.Host, cfg.CAData, cfg.CertData, cfg.KeyData); err != nil {
		t.Fatal(err)
	}
	return path
}

// kubectl runs the pinned kubectl with kubeconfig, env and stdin.
func kubectl(t *testing.T, kubeconfig string, env []string, stdin string, args ...string) harness.KubectlResult {
	t.Helper()
	return harness.Kubectl(t, gw.bins.Kubectl, kubeconfig, env, stdin, args...)
}

// mustKubectl runs kubectl and fails the test unless it exits 0.
func mustKubectl(t *testing.T, kubeconfig string, env []string, stdin string, args ...string) string {
	t.Helper()
	res := kubectl(t, kubeconfig, env, stdin, args...)
	if res.ExitCode != 0 {
		t.Fatalf("kubectl %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.ExitCode, res.Stdout, res.Stderr)
	}
	return res.Stdout
}

// namespaceOn makes a namespace of the same name on every cluster in
// names, with the default ServiceAccount Pods need, for one test. The same
// name everywhere means a request sent to the wrong cluster would find
// what it looks for, so only the right answer tells the clusters apart.
func namespaceOn(t *testing.T, names ...string) string {
	t.Helper()
	ns := harness.UniqueName("gw")
	for _, name := range names {
		admin := gw.members[name].admin
		ctx := context.Background()
		if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = admin.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
		if _, err := admin.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return ns
}

// grant gives subject rules in ns on cluster.
func grant(t *testing.T, cluster, ns string, subject rbacv1.Subject, rules ...rbacv1.PolicyRule) {
	t.Helper()
	ctx := context.Background()
	admin := gw.members[cluster].admin
	name := harness.UniqueName("role")
	if _, err := admin.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{subject},
	}
	if _, err := admin.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func userSubject(name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}
}

// readConfigMaps lets a subject get, list and watch ConfigMaps.
var readConfigMaps = rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch"}}

// configMap creates ConfigMap ns/name on cluster, with data cluster=<its
// name>, so that whoever reads it sees which cluster answered.
func configMap(t *testing.T, cluster, ns, name string) {
	t.Helper()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"cluster": cluster}}
	if _, err := gw.members[cluster].admin.CoreV1().ConfigMaps(ns).Create(context.Background(), cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// configMapPath is ConfigMap ns/name's path on a cluster.
func configMapPath(ns, name string) string {
	return "/api/v1/namespaces/" + ns + "/configmaps/" + name
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// auditEvents are the ResponseComplete events of cluster's audit log
// whose request URI contains marker, or that any of users made or were
// impersonated as, when users are given.
func auditEvents(t *testing.T, cluster, marker string, users ...string) []auditv1.Event {
	t.Helper()
	data, err := os.ReadFile(gw.members[cluster].cluster.AuditLogPath)
	if err != nil {
		t.Fatal(err)
	}
	var found []auditv1.Event
	for _, line := range bytes.Split(data, []byte("\n")) {
		var ev auditv1.Event
		if json.Unmarshal(line, &ev) != nil || ev.Stage != auditv1.StageResponseComplete {
			continue // a line still being written, or an earlier stage
		}
		if marker != "" && strings.Contains(ev.RequestURI, marker) {
			found = append(found, ev)
			continue
		}
		for _, u := range users {
			if ev.User.Username == u || (ev.ImpersonatedUser != nil && ev.ImpersonatedUser.Username == u) {
				found = append(found, ev)
				break
			}
		}
	}
	return found
}

// settleAudit returns once cluster's audit log holds a request made after
// every request before it was answered: what the log lacks then, the
// cluster never saw.
func settleAudit(t *testing.T, cluster string) {
	t.Helper()
	marker := harness.UniqueName("audit-sentinel")
	_, _ = gw.members[cluster].admin.CoreV1().Namespaces().Get(context.Background(), marker, metav1.GetOptions{})
	harness.Eventually(t, 30*time.Second, func() error {
		if len(auditEvents(t, cluster, marker)) == 0 {
			return errorf("%s's audit log does not show %s yet", cluster, marker)
		}
		return nil
	})
}

// wantUnseen fails if cluster's audit log shows a request whose URI holds
// marker, or that users made or were impersonated as.
func wantUnseen(t *testing.T, cluster, marker string, users ...string) {
	t.Helper()
	settleAudit(t, cluster)
	for _, ev := range auditEvents(t, cluster, marker, users...) {
		t.Errorf("cluster %s saw %s %s by %s (as %v), which must never reach it", cluster, ev.Verb, ev.RequestURI, ev.User.Username, ev.ImpersonatedUser)
	}
}
