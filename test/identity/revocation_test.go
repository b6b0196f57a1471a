package identity

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	kipexchange "github.com/kip-proxy/kip/internal/exchange"
	"github.com/kip-proxy/kip/internal/revocation"
	"github.com/kip-proxy/kip/internal/rig/harness"
	loginv1alpha1 "github.com/kip-proxy/kip/pkg/apis/login/v1alpha1"
)

// revocationList is the ConfigMap deploy/rbac.yaml lets kip read its
// revocation list from.
const revocationList = "kip-revocations"

// TestRevocationReachesEveryReplica: two replicas follow one revocation
// list. Ten clients of one signed-in user run against them, six with
// kip certificates from the exchange and four with the ID token as a
// bearer token, beside a bystander's client. An incident responder, whom
// the cluster's RBAC lets revoke (deploy/rbac.yaml's kip-revoker Role),
// runs `kip revoke user` through kip; someone without that Role is
// refused by the cluster. Within 5 s of the write every one of the ten
// clients is refused, on both replicas, and stays refused; the bystander
// never fails. Each refusal is counted and audited. The old ID token can
// no longer be exchanged, while a fresh sign-in after the entry's time,
// which the provider still vouches for, works on both replicas. Once the
// responder removes the entry, the old certificate works again.
func TestRevocationReachesEveryReplica(t *testing.T) {
	ns := createNamespace(t)
	applyDeployedRole(t, ns, signerSecret)
	applyDeployedRole(t, ns, revocationList)
	responder := grantRevoker(t, ns)
	auditDir := t.TempDir()
	policy, err := harness.WriteAuditPolicy(auditDir)
	if err != nil {
		t.Fatal(err)
	}
	replicas := startReplicas(t, ns, 2, func(i int) []string {
		return []string{"--revocation-configmap=" + ns + "/" + revocationList,
			"--audit-policy-file=" + policy, fmt.Sprintf("--audit-log-path=%s/audit-%d.log", auditDir, i)}
	})

	name := harness.UniqueName("leaver")
	who := idpUser(name)
	token := idToken(t, clientID, person(name))
	bystanderToken := idToken(t, clientID, person(harness.UniqueName("bystander")))
	var clients []*probeClient
	var bystanders []*probeClient
	for _, r := range replicas {
		for range 3 {
			clients = append(clients, startProbe(t, fmt.Sprintf("certificate at kip-%d", r.index), withCert(r.config, mustExchangeAt(t, r.config, token, nil))))
		}
		for range 2 {
			clients = append(clients, startProbe(t, fmt.Sprintf("ID token at kip-%d", r.index), withBearer(r.config, token)))
		}
		bystanders = append(bystanders, startProbe(t, fmt.Sprintf("bystander at kip-%d", r.index), withCert(r.config, mustExchangeAt(t, r.config, bystanderToken, nil))))
	}
	harness.Eventually(t, 30*time.Second, func() error { return allServed(append(clients, bystanders...)) })
	// A watch already past authentication is ended too, on each replica.
	bindView(t, ns, who.Username)
	var watches []watch.Interface
	oldCerts := map[int]*loginv1alpha1.ClusterCredential{}
	for _, r := range replicas {
		oldCerts[r.index] = mustExchangeAt(t, r.config, token, nil)
		watches = append(watches, startWatch(t, ns, withCert(r.config, oldCerts[r.index])))
	}

	// Someone the cluster does not let revoke is refused by the cluster.
	outsider := harness.UserKubeconfig(t, env.stack, harness.UniqueName("outsider"))
	if out, err := runKip(t, "revoke", "user", who.Username, "--kubeconfig", outsider, "--configmap", ns+"/"+revocationList); err == nil || !strings.Contains(out, "kip-revoker") {
		t.Fatalf("kip revoke by someone without the revoker Role: %v\n%s", err, out)
	}
	if out, err := runKip(t, "revoke", "user", who.Username, "--reason", "left the company",
		"--kubeconfig", responder, "--configmap", ns+"/"+revocationList); err != nil {
		t.Fatalf("kip revoke: %v\n%s", err, out)
	}
	written := time.Now()
	entry := readEntry(t, ns, who.Username)
	if entry.By == "" || entry.Reason != "left the company" {
		t.Errorf("entry %+v, want who wrote it and why", entry)
	}

	deadline := written.Add(5 * time.Second)
	harness.Eventually(t, 10*time.Second, func() error { return allRefused(clients) })
	for _, c := range clients {
		at, _ := c.firstRefusal()
		t.Logf("%s: refused %v after the write", c.name, at.Sub(written).Round(time.Millisecond))
		if at.After(deadline) {
			t.Errorf("%s was refused only %v after the revocation was written, want within 5 s", c.name, at.Sub(written))
		}
	}
	for i, w := range watches {
		select {
		case <-closed(w):
			t.Logf("the watch at kip-%d ended %v after the write", i, time.Since(written).Round(time.Millisecond))
		case <-time.After(time.Until(deadline)):
			t.Errorf("the revoked user's watch at kip-%d was still open 5 s after the write", i)
		}
	}
	time.Sleep(time.Second) // Time for a refused client to slip back in.
	for _, c := range append(clients, bystanders...) {
		c.stop()
	}
	for _, c := range clients {
		if n := c.servedAfterRefusal(); n > 0 {
			t.Errorf("%s was served %d times after its first refusal", c.name, n)
		}
	}
	for _, b := range bystanders {
		if err := b.failure(); err != nil {
			t.Errorf("%s failed: %v", b.name, err)
		}
	}
	for _, r := range replicas {
		checkRevocationRecorded(t, r, filepath.Join(auditDir, fmt.Sprintf("audit-%d.log", r.index)), entry)
	}

	// The old ID token no longer buys a certificate; a fresh sign-in
	// after the entry's time does. ID tokens' iat counts whole seconds.
	time.Sleep(time.Until(entry.Before.Add(1100 * time.Millisecond)))
	fresh := idToken(t, clientID, person(name))
	for _, r := range replicas {
		if out, err := exchangeAt(t, r.config, token, nil); err != nil || out.Status.Credential != nil {
			t.Errorf("exchanging the revoked ID token at kip-%d: %v, want no credential", r.index, err)
		}
		cred := mustExchangeAt(t, r.config, fresh, nil)
		got, err := whoami(t, withCert(r.config, cred))
		if err != nil {
			t.Fatalf("a fresh sign-in at kip-%d: %v", r.index, err)
		}
		checkIdentity(t, got, who)
		checkExchangesAudited(t, r, filepath.Join(auditDir, fmt.Sprintf("audit-%d.log", r.index)), who.Username, cred)
	}

	// The responder lists the entry, then removes it: the certificate
	// issued before it is accepted again, on every replica.
	list := ns + "/" + revocationList
	out, err := runKip(t, "revoke", "list", "-o", "json", "--kubeconfig", responder, "--configmap", list)
	var listed []revocation.Entry
	if err != nil || json.Unmarshal([]byte(out), &listed) != nil || len(listed) != 1 || listed[0].Value != who.Username {
		t.Fatalf("kip revoke list: %v\n%s", err, out)
	}
	if out, err := runKip(t, "revoke", "remove", "user", who.Username, "--kubeconfig", responder, "--configmap", list); err != nil {
		t.Fatalf("kip revoke remove: %v\n%s", err, out)
	}
	for _, r := range replicas {
		old := withCert(r.config, oldCerts[r.index])
		harness.Eventually(t, 5*time.Second, func() error { _, err := whoami(t, old); return err })
	}
}

// bindView lets user read ConfigMaps in ns, so that they can watch them.
// (The rig runs no controller manager, which fills in the view role.)
func bindView(t *testing.T, ns, user string) {
	t.Helper()
	admin, ctx := adminClient(t), context.Background()
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "configmap-viewer"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch"}}},
	}
	if _, err := admin.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "configmap-viewers"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	if _, err := admin.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// startWatch watches ConfigMaps in ns as cfg's user, once the cluster's
// RBAC lets them.
func startWatch(t *testing.T, ns string, cfg *rest.Config) watch.Interface {
	t.Helper()
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var w watch.Interface
	harness.Eventually(t, 10*time.Second, func() error {
		w, err = client.CoreV1().ConfigMaps(ns).Watch(context.Background(), metav1.ListOptions{})
		return err
	})
	t.Cleanup(w.Stop)
	return w
}

// closed is closed once w's result channel is, draining it meanwhile.
func closed(w watch.Interface) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range w.ResultChan() {
		}
	}()
	return done
}

// grantRevoker binds deploy/rbac.yaml's kip-revoker Role in ns to a user,
// and returns a kubeconfig that reaches the cluster through kip as them.
func grantRevoker(t *testing.T, ns string) string {
	t.Helper()
	role, err := harness.DeployedRole("kip-revoker")
	if err != nil {
		t.Fatal(err)
	}
	role.Namespace = ns
	user := harness.UniqueName("responder")
	admin := adminClient(t)
	ctx := context.Background()
	if _, err := admin.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "responders"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	if _, err := admin.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The chart creates the list empty, so a responder needs no create.
	list := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: revocationList}}
	if _, err := admin.CoreV1().ConfigMaps(ns).Create(ctx, list, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return harness.UserKubeconfig(t, env.stack, user)
}

// runKip runs the kip binary with args and returns what it printed.
func runKip(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, env.kip, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), "KUBECONFIG=")
	err := cmd.Run()
	return out.String(), err
}

// readEntry is the list's entry for user, as kip revoke wrote it.
func readEntry(t *testing.T, ns, user string) revocation.Entry {
	t.Helper()
	entries, problems, err := revocation.Source{Client: adminClient(t), Namespace: ns, Name: revocationList}.Entries(context.Background())
	if err != nil || len(problems) > 0 {
		t.Fatal(err, problems)
	}
	for _, e := range entries {
		if e.Kind == revocation.KindUser && e.Value == user {
			return e
		}
	}
	t.Fatalf("no entry for %s in %+v", user, entries)
	return revocation.Entry{}
}

// checkRevocationRecorded fails unless r counted refusals by a user entry
// and its audit log has a refused request annotated with the entry.
func checkRevocationRecorded(t *testing.T, r *replica, auditLog string, e revocation.Entry) {
	t.Helper()
	m, err := harness.ScrapeMetrics(context.Background(), http.DefaultClient, r.ProbeURL+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if n := m.Sample("kip_revocation_refusals_total", map[string]string{"kind": "user"}); n < 1 {
		t.Errorf("kip-%d counted %v refusals by a user entry, want some", r.index, n)
	}
	if n := m.Sample("kip_longrunning_ended_total", map[string]string{"reason": "revoked"}); n < 1 {
		t.Errorf("kip-%d counted %v requests ended by a revocation, want its watch", r.index, n)
	}
	events, err := readAuditEvents(auditLog)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range events {
		if ev.Annotations[revocation.AuditAnnotation] == e.Key() && ev.ResponseStatus.Code == http.StatusUnauthorized {
			return
		}
	}
	t.Errorf("kip-%d's audit log has no 401 annotated %s=%s", r.index, revocation.AuditAnnotation, e.Key())
}

// auditEvent is what the tests read of an event in kip's audit log.
type auditEvent struct {
	Annotations    map[string]string  `json:"annotations"`
	ResponseStatus struct{ Code int } `json:"responseStatus"`
	User           struct{ Username string }
}

// readAuditEvents reads kip's audit log at path, skipping what does not
// parse (a line being written).
func readAuditEvents(path string) ([]auditEvent, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var events []auditEvent
	for _, line := range bytes.Split(data, []byte("\n")) {
		var ev auditEvent
		if json.Unmarshal(line, &ev) == nil {
			events = append(events, ev)
		}
	}
	return events, nil
}

// checkExchangesAudited fails unless r's audit log has the exchange that
// issued cred to user, named by the certificate's credential-id, and one
// whose token was refused.
func checkExchangesAudited(t *testing.T, r *replica, auditLog, user string, cred *loginv1alpha1.ClusterCredential) {
	t.Helper()
	sum := sha256.Sum256(parseCert(t, cred.ClientCertificateData).Raw)
	issued := map[string]string{kipexchange.AuditOutcomeAnnotation: "issued", kipexchange.AuditUserAnnotation: user,
		kipexchange.AuditCredentialAnnotation: "X509SHA256=" + hex.EncodeToString(sum[:])}
	refused := map[string]string{kipexchange.AuditOutcomeAnnotation: "token-refused"}
	harness.Eventually(t, 5*time.Second, func() error {
		events, err := readAuditEvents(auditLog)
		if err != nil {
			return err
		}
		found := map[string]bool{}
		for _, ev := range events {
			if ev.User.Username != "" {
				continue
			}
			for name, want := range map[string]map[string]string{"issued": issued, "refused": refused} {
				if hasAnnotations(ev.Annotations, want) {
					found[name] = true
				}
			}
		}
		if !found["issued"] || !found["refused"] {
			return fmt.Errorf("kip-%d's audit log has the exchanges %v, want an issued one annotated %v and a refused one", r.index, found, issued)
		}
		return nil
	})
}

func hasAnnotations(got, want map[string]string) bool {
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// probeClient asks who it is, over and over, and remembers what it was
// told: when it was first refused with 401, how often it was served after
// that, and any other failure.
type probeClient struct {
	name   string
	cancel context.CancelFunc
	done   chan struct{}

	mu                  sync.Mutex
	served              int
	refusedAt           time.Time
	servedAfterRefusals int
	err                 error
}

func startProbe(t *testing.T, name string, cfg *rest.Config) *probeClient {
	t.Helper()
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &probeClient{name: name, cancel: cancel, done: make(chan struct{})}
	t.Cleanup(c.stop)
	go c.run(ctx, client)
	return c
}

func (c *probeClient) run(ctx context.Context, client kubernetes.Interface) {
	defer close(c.done)
	for ctx.Err() == nil {
		_, err := client.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		c.record(ctx, err)
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *probeClient) record(ctx context.Context, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case err == nil && c.refusedAt.IsZero():
		c.served++
	case err == nil:
		c.servedAfterRefusals++
	case statusCode(err) == http.StatusUnauthorized && c.refusedAt.IsZero():
		c.refusedAt = time.Now()
	case statusCode(err) == http.StatusUnauthorized:
	case ctx.Err() == nil && c.err == nil:
		c.err = err
	}
}

func (c *probeClient) stop() {
	c.cancel()
	<-c.done
}

func (c *probeClient) firstRefusal() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refusedAt, !c.refusedAt.IsZero()
}

func (c *probeClient) servedAfterRefusal() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.servedAfterRefusals
}

// failure is the first failure other than a refusal, or a refusal of a
// client that should never have had one.
func (c *probeClient) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	if !c.refusedAt.IsZero() {
		return fmt.Errorf("refused at %s", c.refusedAt.Format(time.RFC3339Nano))
	}
	return nil
}

func allServed(clients []*probeClient) error {
	for _, c := range clients {
		c.mu.Lock()
		served, err := c.served, c.err
		c.mu.Unlock()
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		if served == 0 {
			return fmt.Errorf("%s has not been served yet", c.name)
		}
	}
	return nil
}

func allRefused(clients []*probeClient) error {
	for _, c := range clients {
		if _, ok := c.firstRefusal(); !ok {
			return fmt.Errorf("%s has not been refused yet", c.name)
		}
	}
	return nil
}
