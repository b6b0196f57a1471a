package identity

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/kip-proxy/kip/internal/rig/harness"
	"github.com/kip-proxy/kip/internal/rig/pki"
)

// TestSignerCARotation: after the operator replaces the signer CA files,
// new certificates come from the new CA while one issued before keeps
// working, since it has not expired.
func TestSignerCARotation(t *testing.T) {
	name := harness.UniqueName("rotated")
	token := idToken(t, clientID, person(name))
	before := mustExchange(t, token, nil)
	oldCA := loadSigner(t)

	newCA, err := pki.NewCA("kip signer CA, rotated", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	replaceSignerFiles(t, newCA)

	var after string
	err = wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		cred := mustExchange(t, token, nil)
		after = cred.ClientCertificateData
		return bytes.Equal(parseCert(t, after).RawIssuer, newCA.Cert.RawSubject), nil
	})
	if err != nil {
		t.Fatalf("kip still signs with the old CA a minute after the files changed")
	}
	if !bytes.Equal(parseCert(t, before.ClientCertificateData).RawIssuer, oldCA.Cert.RawSubject) {
		t.Fatal("the first certificate was not signed by the first CA")
	}
	if _, err := whoami(t, certConfig([]byte(before.ClientCertificateData), []byte(before.ClientKeyData))); err != nil {
		t.Errorf("a certificate issued before the rotation, still valid, was refused: %v", err)
	}
	latest := mustExchange(t, token, nil)
	if _, err := whoami(t, certConfig([]byte(latest.ClientCertificateData), []byte(latest.ClientKeyData))); err != nil {
		t.Errorf("a certificate from the new CA was refused: %v", err)
	}
}

// replaceSignerFiles swaps the signer CA files for ca's, each by rename, as
// a mounted Secret's update would.
func replaceSignerFiles(t *testing.T, ca *pki.CA) {
	t.Helper()
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	for path, data := range map[string][]byte{env.idp.SignerCAKeyFile: keyPEM, env.idp.SignerCACertFile: ca.CertPEM} {
		tmp := filepath.Join(filepath.Dir(path), ".next-"+filepath.Base(path))
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
}
