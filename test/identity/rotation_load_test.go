package identity

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"

	"github.com/kip-proxy/kip/internal/rig/harness"
	"github.com/kip-proxy/kip/internal/rig/pki"
	"github.com/kip-proxy/kip/internal/signer"
)

// loadPause is how long a load client waits between two requests: enough
// load to keep every path busy, not so much that a shared two-core machine
// starves the processes under test.
const loadPause = 50 * time.Millisecond

// TestRotationsUnderLoad: a kip process of its own (Secret-mode signer,
// serving files of its own) answers 16 clients doing small GETs, a third
// with a certificate from the cluster's client CA, a third with a
// certificate kip's signer issued, a third with an OIDC ID token; half of
// them keep one HTTP/2 connection, half open a new connection for every
// request, so handshakes happen throughout. Every client trusts the serving
// CA, not kip's certificate. While the load runs, three things rotate in
// turn:
//
//   - kip's serving certificate, rewritten on disk with a new one from the
//     same CA: a new connection then presents the new certificate;
//   - the cluster's client CA ConfigMap, which gets a second CA beside the
//     first: a certificate from the new CA is then accepted, and a client
//     using one joins the load;
//   - the signer CA, rotated through the kip.dev/rotate-requested-at
//     annotation: new exchanges give certificates from the new CA, which a
//     client then uses too, while the certificates the old CA signed keep
//     working.
//
// Every request of every client must succeed: no request is retried, and a
// connection error, a non-200 answer or the wrong object is a failure.
func TestRotationsUnderLoad(t *testing.T) {
	ns := createNamespace(t)
	applyDeployedRole(t, ns, signerSecret)
	group := harness.UniqueName("load-readers")
	grantConfigMapReaders(t, ns, group)
	createTarget(t, ns)

	certFile, keyFile := writeOwnServingFiles(t)
	r, err := startReplica(t, ns, 0, "--tls-cert-file="+certFile, "--tls-private-key-file="+keyFile)
	if err != nil {
		t.Fatal(err)
	}
	creds := loadCredentials(t, r.config, group)

	load := newRotationLoad(r.config.Host + "/api/v1/namespaces/" + ns + "/configmaps/" + loadTarget)
	for i := range 16 {
		load.add(t, creds[i%len(creds)], i%2 == 1)
	}
	load.waitForProgress(t, "the load started")

	// After each rotation, every client, old and new, must have had more
	// requests answered before the next one starts.
	rotateServingCert(t, r.config.Host, certFile, keyFile)
	load.waitForProgress(t, "the serving certificate rotated")

	secondCA := rotateClusterClientCA(t, r.config, ns, group)
	load.add(t, secondCA, false)
	load.add(t, secondCA, true)
	load.waitForProgress(t, "a second cluster client CA was added")

	newSigner := rotateSignerCA(t, r.config, ns, creds)
	load.add(t, newSigner, false)
	load.add(t, newSigner, true)
	load.waitForProgress(t, "the signer CA rotated")

	stats := load.stop()
	t.Logf("%d clients: %d requests answered, %d failed; by credential: %s", len(stats.kinds), stats.answered, len(stats.failed), stats.byKind())
	for _, f := range stats.failed {
		t.Errorf("failed under rotation: %s", f)
	}
}

// loadTarget is the ConfigMap the load clients GET.
const loadTarget = "load-target"

func createTarget(t *testing.T, ns string) {
	t.Helper()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: loadTarget}, Data: map[string]string{"small": "yes"}}
	if _, err := adminClient(t).CoreV1().ConfigMaps(ns).Create(context.Background(), cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// grantConfigMapReaders lets group read and watch ConfigMaps in ns: the
// upstream then answers 200 only if kip passed the group on.
func grantConfigMapReaders(t *testing.T, ns, group string) {
	t.Helper()
	admin := adminClient(t)
	ctx := context.Background()
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "configmap-readers"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch"}}},
	}
	if _, err := admin.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: group}},
	}
	if _, err := admin.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// loadCredential is one way a load client proves who it is: a client
// certificate, or a bearer token.
type loadCredential struct {
	kind            string
	certPEM, keyPEM []byte
	token           string
}

// config reaches host with c, trusting kip's serving CA only.
func (c loadCredential) config(host string) *rest.Config {
	return &rest.Config{
		Host:            host,
		BearerToken:     c.token,
		TLSClientConfig: rest.TLSClientConfig{CAData: env.stack.KipCAPEM, CertData: c.certPEM, KeyData: c.keyPEM},
	}
}

// loadCredentials makes one credential of each kind for a member of group:
// a certificate from the cluster's client CA, an OIDC ID token from Hydra,
// and a certificate the kip at kip issued for that token.
func loadCredentials(t *testing.T, kip *rest.Config, group string) []loadCredential {
	t.Helper()
	certPEM, keyPEM, err := env.stack.Cluster.ClientCA.IssueClient(pki.ClientCertRequest{CommonName: harness.UniqueName("ca-loader"), Organizations: []string{group}})
	if err != nil {
		t.Fatal(err)
	}
	token := idToken(t, clientID, person(harness.UniqueName("oidc-loader"), group))
	exchanged := mustExchangeAt(t, kip, token, nil)
	return []loadCredential{
		{kind: "cluster client CA", certPEM: certPEM, keyPEM: keyPEM},
		{kind: "kip certificate", certPEM: []byte(exchanged.ClientCertificateData), keyPEM: []byte(exchanged.ClientKeyData)},
		{kind: "OIDC token", token: token},
	}
}

// rotationLoad is a set of clients GETting one ConfigMap over and over.
type rotationLoad struct {
	url  string
	done chan struct{}
	wg   sync.WaitGroup

	mu       sync.Mutex
	clients  []string
	kinds    map[string]string
	answered map[string]int
	failed   []string
}

func newRotationLoad(url string) *rotationLoad {
	return &rotationLoad{url: url, done: make(chan struct{}), kinds: map[string]string{}, answered: map[string]int{}}
}

// add starts a client with cred; fresh clients open a new HTTP/1.1
// connection for every request, the others keep one HTTP/2 connection, as
// client-go does.
func (l *rotationLoad) add(t *testing.T, cred loadCredential, fresh bool) {
	t.Helper()
	tlsConfig, err := rest.TLSConfigFor(cred.config(""))
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: tlsConfig, ForceAttemptHTTP2: !fresh, DisableKeepAlives: fresh}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	l.mu.Lock()
	name := fmt.Sprintf("#%d %s, %s", len(l.clients), cred.kind, map[bool]string{true: "new connection each time", false: "kept-alive HTTP/2"}[fresh])
	l.clients = append(l.clients, name)
	l.kinds[name] = cred.kind
	l.mu.Unlock()
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer tr.CloseIdleConnections()
		l.run(name, client, cred.token)
	}()
}

func (l *rotationLoad) run(name string, client *http.Client, token string) {
	for {
		select {
		case <-l.done:
			return
		case <-time.After(loadPause):
		}
		start := time.Now()
		err := getTarget(client, l.url, token)
		l.mu.Lock()
		if err != nil {
			l.failed = append(l.failed, fmt.Sprintf("client %s, request started %s: %v", name, start.Format("15:04:05.000"), err))
		} else {
			l.answered[name]++
		}
		l.mu.Unlock()
	}
}

// getTarget GETs the ConfigMap at url once; anything but a 200 with that
// ConfigMap is an error.
func getTarget(client *http.Client, url, token string) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s, body cut off: %w", resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, body)
	}
	var cm corev1.ConfigMap
	if err := json.Unmarshal(body, &cm); err != nil || cm.Name != loadTarget {
		return fmt.Errorf("200 without ConfigMap %s (%v): %.200s", loadTarget, err, body)
	}
	return nil
}

// progressPerStep is how many more requests every client must have had
// answered before the test takes its next step.
const progressPerStep = 3

// waitForProgress returns once every client has had progressPerStep more
// requests answered, so that each step of the test ran under the whole
// load.
func (l *rotationLoad) waitForProgress(t *testing.T, after string) {
	t.Helper()
	l.mu.Lock()
	before := make(map[string]int, len(l.answered))
	for k, v := range l.answered {
		before[k] = v
	}
	l.mu.Unlock()
	eventually(t, time.Minute, "some load client had no request answered after "+after, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, name := range l.clients {
			if l.answered[name] < before[name]+progressPerStep {
				return false
			}
		}
		return true
	})
}

type rotationLoadStats struct {
	byClient map[string]int
	kinds    map[string]string
	answered int
	failed   []string
}

func (l *rotationLoad) stop() rotationLoadStats {
	close(l.done)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	s := rotationLoadStats{byClient: l.answered, kinds: l.kinds, failed: l.failed}
	for _, n := range l.answered {
		s.answered += n
	}
	return s
}

// byKind sums the answered requests by credential kind, for the log.
func (s rotationLoadStats) byKind() string {
	sums := map[string]int{}
	for name, n := range s.byClient {
		sums[s.kinds[name]] += n
	}
	var out []string
	for k, n := range sums {
		out = append(out, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// writeOwnServingFiles gives a kip its own serving files, from the serving
// CA every test trusts, so that rotating them touches no other kip.
func writeOwnServingFiles(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	certPEM, keyPEM, err := env.stack.ServingCA.IssueServing([]string{"127.0.0.1", "localhost"}, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err = pki.WriteFiles(t.TempDir(), "serving", certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// rotateServingCert replaces kip's serving files with a new certificate
// from the same CA, each file by rename and the key first, as a careful
// writer does, and waits until a new connection presents it.
func rotateServingCert(t *testing.T, host, certFile, keyFile string) {
	t.Helper()
	before, err := servedCertificate(host)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := env.stack.ServingCA.IssueServing([]string{"127.0.0.1", "localhost"}, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	want, err := pki.ParseCertPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		path string
		data []byte
	}{{keyFile, keyPEM}, {certFile, certPEM}} {
		aside := filepath.Join(filepath.Dir(f.path), ".next-"+filepath.Base(f.path))
		if err := os.WriteFile(aside, f.data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(aside, f.path); err != nil {
			t.Fatal(err)
		}
	}
	var got *x509.Certificate
	eventually(t, 90*time.Second, "a new connection still gets the old serving certificate", func() bool {
		got, err = servedCertificate(host)
		return err == nil && got.Equal(want)
	})
	t.Logf("serving certificate %x replaced by %x", before.SerialNumber, got.SerialNumber)
}

// servedCertificate opens a new connection to host, trusting the serving
// CA only, and returns the certificate kip presented.
func servedCertificate(host string) (*x509.Certificate, error) {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(env.stack.KipCAPEM) {
		return nil, errors.New("the serving CA is not valid PEM")
	}
	conn, err := tls.Dial("tcp", strings.TrimPrefix(host, "https://"), &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12})
	if err != nil {
		return nil, err
	}
	defer func() { _ = conn.Close() }()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// The ConfigMap in which kube-apiserver publishes its client CA, which kip
// watches.
const (
	clusterCANamespace = "kube-system"
	clusterCAName      = "extension-apiserver-authentication"
	clusterCAKey       = "client-ca-file"
)

// rotateClusterClientCA adds a second CA to the cluster's client CA
// ConfigMap, as an operator starting a client CA rotation does, waits until
// kip accepts a certificate from it, and returns that certificate. The
// cleanup takes the CA out again.
func rotateClusterClientCA(t *testing.T, kip *rest.Config, ns, group string) loadCredential {
	t.Helper()
	ca, err := pki.NewCA(harness.UniqueName("second-client-ca"), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	editClusterClientCA(t, func(bundle string) string { return strings.TrimRight(bundle, "\n") + "\n" + string(ca.CertPEM) })
	t.Cleanup(func() {
		editClusterClientCA(t, func(bundle string) string { return withoutCert(t, bundle, ca.Cert) })
	})
	certPEM, keyPEM, err := ca.IssueClient(pki.ClientCertRequest{CommonName: harness.UniqueName("second-ca-loader"), Organizations: []string{group}})
	if err != nil {
		t.Fatal(err)
	}
	cred := loadCredential{kind: "second cluster client CA", certPEM: certPEM, keyPEM: keyPEM}
	tlsConfig, err := rest.TLSConfigFor(cred.config(""))
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig, DisableKeepAlives: true}, Timeout: 30 * time.Second}
	url := kip.Host + "/api/v1/namespaces/" + ns + "/configmaps/" + loadTarget
	var last error
	eventually(t, time.Minute, "kip never accepted a certificate from the added client CA", func() bool {
		last = getTarget(client, url, "")
		return last == nil
	})
	return cred
}

// editClusterClientCA rewrites the client CA bundle in the ConfigMap with
// edit. kube-apiserver only ever adds its own CA back to that bundle, so
// what a test adds stays until the test takes it out.
func editClusterClientCA(t *testing.T, edit func(bundle string) string) {
	t.Helper()
	cms := adminClient(t).CoreV1().ConfigMaps(clusterCANamespace)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cm, err := cms.Get(context.Background(), clusterCAName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cm.Data[clusterCAKey] = edit(cm.Data[clusterCAKey])
		_, err = cms.Update(context.Background(), cm, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// withoutCert is bundle without gone, which it must hold.
func withoutCert(t *testing.T, bundle string, gone *x509.Certificate) string {
	t.Helper()
	var kept []byte
	found := false
	for rest := []byte(bundle); ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		if bytes.Equal(block.Bytes, gone.Raw) {
			found = true
			continue
		}
		kept = append(kept, pem.EncodeToMemory(block)...)
	}
	if !found {
		t.Errorf("the cluster client CA bundle no longer holds the CA the test added")
	}
	return string(kept)
}

// rotateSignerCA asks for a rotation of the signer CA in ns's Secret, waits
// until kip issues certificates from the new CA, and returns one. The old
// certificates among creds were issued by the old CA.
func rotateSignerCA(t *testing.T, kip *rest.Config, ns string, creds []loadCredential) loadCredential {
	t.Helper()
	oldCA := parseCert(t, string(getSecret(t, ns).Data[corev1.TLSCertKey]))
	var token string
	for _, c := range creds {
		if c.kind == "kip certificate" {
			if err := parseCert(t, string(c.certPEM)).CheckSignatureFrom(oldCA); err != nil {
				t.Fatalf("the load's kip certificate was not signed by the Secret's CA: %v", err)
			}
		}
		if c.token != "" {
			token = c.token
		}
	}
	requested := time.Now().UTC().Format(time.RFC3339Nano)
	requestRotation(t, ns, requested)
	var secret *corev1.Secret
	eventually(t, time.Minute, "the requested signer CA rotation never completed", func() bool {
		secret = getSecret(t, ns)
		return secret.Annotations[signer.RotateHandledAnnotation] == requested
	})
	newCA := parseCert(t, string(secret.Data[corev1.TLSCertKey]))
	if newCA.Equal(oldCA) {
		t.Fatal("the rotation was marked done but the Secret holds the old CA")
	}
	var cred loadCredential
	eventually(t, time.Minute, "kip still signs with the old CA", func() bool {
		c := mustExchangeAt(t, kip, token, nil)
		cred = loadCredential{kind: "kip certificate from the new signer CA", certPEM: []byte(c.ClientCertificateData), keyPEM: []byte(c.ClientKeyData)}
		return parseCert(t, c.ClientCertificateData).CheckSignatureFrom(newCA) == nil
	})
	return cred
}
