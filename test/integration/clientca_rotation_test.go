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
// is refused as soon as kip has reloaded the file. The refusal also ends
// the connection (an unauthenticated HTTP/2 client may not keep one open),
// so the CA is then put back and a new connection is served again.
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

	user := harness.UniqueName("ca-removal")
	client, dials := oneConnectionClient(t, rawClientCert(t, removable, pki.ClientCertRequest{CommonName: user}))
	harness.Eventually(t, time.Minute, func() error { return expectStatus(client, kipURL, http.StatusCreated) })
	// Dials before this were attempts while kip was starting.
	opened := dials.Load()
	for range 5 {
		if err := expectStatus(client, kipURL, http.StatusCreated); err != nil {
			t.Fatal(err)
		}
	}

	writeAtomically(t, caFile, string(unrelated.CertPEM))
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
