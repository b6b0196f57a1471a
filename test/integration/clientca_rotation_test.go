package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kip-proxy/kip/internal/rig/harness"
	"github.com/kip-proxy/kip/internal/rig/pki"
	rbacv1 "k8s.io/api/rbac/v1"
)

// clientCACutOff bounds how long kip may take to refuse a certificate whose
// CA left --client-ca-file. kip notices the change through fsnotify at
// once; the bound stays well below the minute for which kip reuses a
// connection's verified certificate, so a reuse that ignored the change
// would fail here.
const clientCACutOff = 30 * time.Second

// TestClientCARotationCutsOffOpenConnections keeps one HTTP/2 connection
// open to kip with a certificate from a CA in --client-ca-file, removes that
// CA from the file, and checks that a request on the very same connection
// is refused as soon as kip has reloaded the file. A watch that the
// certificate opened before ends too, while one of a certificate of the CA
// that stays goes on. The refusal also ends the connection (an
// unauthenticated HTTP/2 client may not keep one open), so the CA is then
// put back and a new connection is served again.
func TestClientCARotationCutsOffOpenConnections(t *testing.T) {
	removable, err := pki.NewCA("kip-removable-client-ca", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	unrelated, err := pki.NewCA("kip-unrelated-client-ca", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "client-ca.crt")
	writeAtomically(t, caFile, string(unrelated.CertPEM)+string(removable.CertPEM))
	kipURL := harness.StartKip(t, harness.KipOptions{Stack: stack, Args: []string{"--client-ca-file=" + caFile}, Ready: harness.Started}).URL

	user, bystander := harness.UniqueName("ca-removal"), harness.UniqueName("ca-kept")
	cert := rawClientCert(t, removable, pki.ClientCertRequest{CommonName: user})
	client, dials := oneConnectionClient(t, cert)
	harness.Eventually(t, time.Minute, func() error { return expectStatus(client, kipURL, http.StatusCreated) })
	// Dials before this were attempts while kip was starting.
	opened := dials.Load()
	for range 5 {
		if err := expectStatus(client, kipURL, http.StatusCreated); err != nil {
			t.Fatal(err)
		}
	}

	ns := createNamespace(t)
	removedWatch := watchUntilEnded(t, kipURL, ns, cert, user)
	keptWatch := watchUntilEnded(t, kipURL, ns, rawClientCert(t, unrelated, pki.ClientCertRequest{CommonName: bystander}), bystander)

	writeAtomically(t, caFile, string(unrelated.CertPEM))
	wantOnlyRemovedEnded(t, removedWatch, keptWatch, "the file changed")
	var redialled int32
	harness.Eventually(t, clientCACutOff, func() error {
		err := expectStatus(client, kipURL, http.StatusUnauthorized)
		redialled = dials.Load() - opened
		return err
	})
	if redialled != 0 {
		t.Fatalf("the client dialled %d more connections before the refusal, want it on the connection kip served before", redialled)
	}

	writeAtomically(t, caFile, string(unrelated.CertPEM)+string(removable.CertPEM))
	harness.Eventually(t, clientCACutOff, func() error { return expectStatus(client, kipURL, http.StatusCreated) })
}

// wantOnlyRemovedEnded waits for the watch of a removed CA's certificate
// to end, at most clientCACutOff after change, and checks that the watch
// of a CA still trusted goes on.
func wantOnlyRemovedEnded(t *testing.T, removed, kept <-chan struct{}, change string) {
	t.Helper()
	since := time.Now()
	select {
	case <-removed:
		t.Logf("the watch of the removed CA's certificate ended %v after %s", time.Since(since).Round(time.Millisecond), change)
	case <-time.After(clientCACutOff):
		t.Fatalf("the watch of the removed CA's certificate was still open %v after %s", clientCACutOff, change)
	}
	select {
	case <-kept:
		t.Fatal("the watch of a certificate of a CA still trusted was ended too")
	default:
	}
}

// watchUntilEnded starts a watch of ConfigMaps in ns as user, on a
// connection of its own with cert, and returns a channel closed when the
// watch ends.
func watchUntilEnded(t *testing.T, kipURL, ns string, cert *tls.Certificate, user string) <-chan struct{} {
	t.Helper()
	grant(t, ns, rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user},
		rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"list", "watch"}})
	client, _ := oneConnectionClient(t, cert)
	client.Timeout = 0 // the watch lasts as long as kip lets it
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var resp *http.Response
	harness.Eventually(t, time.Minute, func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, kipURL+"/api/v1/namespaces/"+ns+"/configmaps?watch=1&timeoutSeconds=600", nil)
		if err != nil {
			return err
		}
		if resp, err = client.Do(req); err != nil { //nolint:bodyclose // the goroutine below closes it when the watch ends
			return err
		}
		if resp.StatusCode != http.StatusOK {
			_ = resp.Body.Close()
			return fmt.Errorf("watch as %s: %s", user, resp.Status)
		}
		return nil
	})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}()
	return ended
}

// oneConnectionClient is an HTTP/2 client with cert that keeps its
// connection open and counts the connections it dials.
func oneConnectionClient(t *testing.T, cert *tls.Certificate) (*http.Client, *atomic.Int32) {
	t.Helper()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(stack.KipCAPEM) {
		t.Fatal("kip's serving CA is not valid PEM")
	}
	var dials atomic.Int32
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	tr := &http.Transport{
		ForceAttemptHTTP2: true,
		MaxConnsPerHost:   1,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return dialer.DialContext(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{
			RootCAs:              roots,
			MinVersion:           tls.VersionTLS12,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil },
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, &dials
}

// expectStatus sends a SelfSubjectReview and reports an error unless the
// answer has code want and came over HTTP/2.
func expectStatus(client *http.Client, kipURL string, want int) error {
	resp, err := client.Post(kipURL+selfSubjectReview.path, "application/json", strings.NewReader(selfSubjectReview.body))
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	if resp.ProtoMajor != 2 {
		return fmt.Errorf("answered over %s, want HTTP/2", resp.Proto)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("got %d, want %d: %s", resp.StatusCode, want, body)
	}
	return nil
}
