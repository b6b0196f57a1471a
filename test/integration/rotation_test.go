package integration

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"

	"github.com/kip-proxy/kip/internal/rig/harness"
	"github.com/kip-proxy/kip/internal/rig/pki"
)

// rotationTimeout covers the slow path: kip notices a changed file through
// fsnotify at once, and otherwise by a check once a minute.
const rotationTimeout = 90 * time.Second

// TestServingCertificateRotation replaces kip's serving certificate and key
// on disk, the way cert-manager or a kubelet-mounted Secret does, and checks
// that new connections get the new certificate and still work, without a
// restart. The second rotation moves to a certificate from another CA, as
// when the serving CA itself is replaced; the cleanup puts the original
// back so that later tests, which trust stack.KipCAPEM, keep working.
func TestServingCertificateRotation(t *testing.T) {
	user := harness.UniqueName("rotation")
	userCert := rawUserCert(t, user)
	originalCert, err := os.ReadFile(stack.ServingCertFile)
	if err != nil {
		t.Fatal(err)
	}
	originalKey, err := os.ReadFile(stack.ServingKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	original := servingSerialOf(t, originalCert)
	t.Cleanup(func() {
		installServingCert(t, originalCert, originalKey)
		harness.Eventually(t, rotationTimeout, func() error {
			return servesServingSerial(stack.KipCAPEM, userCert, user, original)
		})
	})

	before, err := servingSerialOverNewConn(stack.KipCAPEM, userCert, user)
	if err != nil {
		t.Fatal(err)
	}
	if before.Cmp(original) != 0 {
		t.Fatalf("kip serves certificate %x, not %x from %s", before, original, stack.ServingCertFile)
	}

	otherCA, err := pki.NewCA("kip-serving-ca-rotated", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		ca    *pki.CA
		caPEM []byte
	}{
		{name: "same CA", ca: stack.ServingCA, caPEM: stack.KipCAPEM},
		{name: "another CA", ca: otherCA, caPEM: otherCA.CertPEM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certPEM, keyPEM, err := tt.ca.IssueServing([]string{"127.0.0.1", "localhost"}, 24*time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			want := servingSerialOf(t, certPEM)
			if want.Cmp(before) == 0 {
				t.Fatal("the new certificate has the old serial")
			}
			installServingCert(t, certPEM, keyPEM)
			harness.Eventually(t, rotationTimeout, func() error {
				return servesServingSerial(tt.caPEM, userCert, user, want)
			})
			before = want
		})
	}

	// Clients that trust only the old CA must now refuse kip: it no longer
	// holds a certificate from that CA.
	if _, err := servingSerialOverNewConn(stack.KipCAPEM, userCert, user); err == nil {
		t.Error("a client trusting only the original serving CA still accepts kip after it moved to another CA")
	} else if cve := (*tls.CertificateVerificationError)(nil); !errors.As(err, &cve) {
		t.Errorf("a client trusting only the original serving CA failed, but not on verification: %v", err)
	}
}

// installServingCert replaces kip's serving files the way a careful writer
// does: each file is written aside and renamed over the old one, key first,
// so that kip never reads half a file. Between the two renames kip sees a
// key that does not match its certificate, and must keep serving the old
// pair.
func installServingCert(t *testing.T, certPEM, keyPEM []byte) {
	t.Helper()
	// Beside the live files, so that rename stays on one file system.
	dir, err := os.MkdirTemp(filepath.Dir(stack.ServingCertFile), ".rotate-")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	certPath, keyPath, err := pki.WriteFiles(dir, "serving", certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(keyPath, stack.ServingKeyFile); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(certPath, stack.ServingCertFile); err != nil {
		t.Fatal(err)
	}
}

// servesServingSerial opens a new connection to kip, trusting caPEM only, and
// reports an error unless kip presents the certificate with serial want and
// answers a request over that very connection as user.
func servesServingSerial(caPEM []byte, cert *tls.Certificate, user string, want *big.Int) error {
	got, err := servingSerialOverNewConn(caPEM, cert, user)
	if err != nil {
		return err
	}
	if got.Cmp(want) != 0 {
		return fmt.Errorf("kip still serves certificate %x, want %x", got, want)
	}
	return nil
}

// servingSerialOverNewConn opens a new connection to kip, trusting caPEM only, sends a
// SelfSubjectReview over it and returns the serial of the certificate kip
// presented, once the request came back as user.
func servingSerialOverNewConn(caPEM []byte, cert *tls.Certificate, user string) (*big.Int, error) {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("the serving CA is not valid PEM")
	}
	var serial *big.Int
	tr := &http.Transport{
		// One connection per call: a kept-alive one would still show the
		// certificate it was opened with.
		DisableKeepAlives: true,
		ForceAttemptHTTP2: true,
		TLSClientConfig: &tls.Config{
			RootCAs:              roots,
			MinVersion:           tls.VersionTLS12,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil },
			VerifyConnection: func(cs tls.ConnectionState) error {
				serial = cs.PeerCertificates[0].SerialNumber
				return nil
			},
		},
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	resp, err := client.Post(stack.KipURL+selfSubjectReview.path, "application/json", strings.NewReader(selfSubjectReview.body))
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusCreated {
		return nil, fmt.Errorf("SelfSubjectReview over a new connection: got %d, want 201: %s", resp.StatusCode, body)
	}
	var review authenticationv1.SelfSubjectReview
	if err := json.Unmarshal(body, &review); err != nil {
		return nil, fmt.Errorf("decoding the SelfSubjectReview: %w: %s", err, body)
	}
	if got := review.Status.UserInfo.Username; got != user {
		return nil, fmt.Errorf("SelfSubjectReview over a new connection ran as %q, want %q", got, user)
	}
	return serial, nil
}

func servingSerialOf(t *testing.T, certPEM []byte) *big.Int {
	t.Helper()
	c, err := pki.ParseCertPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber
}
