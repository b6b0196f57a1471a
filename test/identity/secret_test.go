package identity

import (
	"bytes"
	"os"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/internal/rig/harness"
)

// TestSignerCASecretSharedByReplicas: two kip replicas started at once
// with --signer-ca-secret and only the rights in deploy/rbac.yaml race to
// create the Secret; both end up with the one CA, so a certificate one of
// them issued is accepted by the other.
func TestSignerCASecretSharedByReplicas(t *testing.T) {
	ns := createNamespace(t)
	applyDeployedRole(t, ns, signerSecret)

	replicas := startReplicas(t, ns, 2, nil)
	for _, r := range replicas {
		if data, err := os.ReadFile(r.LogPath); err == nil && bytes.Contains(data, []byte("Another replica created the signer CA Secret first")) {
			t.Logf("replica %d lost the race to create the Secret and used the winner's", r.index)
		}
	}
	secret := getSecret(t, ns)
	if secret.Type != corev1.SecretTypeTLS || len(secret.Data[corev1.TLSCertKey]) == 0 {
		t.Fatalf("Secret %s/%s is %s with keys %v, want a kubernetes.io/tls CA", ns, signerSecret, secret.Type, keys(secret.Data))
	}

	name := harness.UniqueName("replicated")
	token := idToken(t, clientID, person(name))
	for i, issuer := range replicas {
		cred := mustExchangeAt(t, issuer.config, token, nil)
		if !bytes.Equal(parseCert(t, cred.ClientCertificateData).RawIssuer, parseCert(t, string(secret.Data[corev1.TLSCertKey])).RawSubject) {
			t.Errorf("replica %d signs with a CA other than the Secret's", i)
		}
		for j, verifier := range replicas {
			cfg := rest.CopyConfig(verifier.config)
			cfg.CertData, cfg.KeyData = []byte(cred.ClientCertificateData), []byte(cred.ClientKeyData)
			got, err := whoami(t, cfg)
			if err != nil {
				t.Errorf("a certificate from replica %d at replica %d: %v", i, j, err)
				continue
			}
			checkIdentity(t, got, idpUser(name))
		}
	}
}
