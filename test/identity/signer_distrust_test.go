package identity

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kip-proxy/kip/internal/rig/harness"
	"github.com/kip-proxy/kip/internal/signer"
	loginv1alpha1 "github.com/kip-proxy/kip/pkg/apis/login/v1alpha1"
)

// TestRevokeSignerCAReachesEveryReplica: after an ordinary rotation a
// user holds a certificate of the retired CA and one of the signing CA,
// and both work at every replica. `kip revoke signer-ca`, run by a
// cluster admin, has the Lease holder replace the CA and trust neither:
// every replica then refuses both certificates, ends the watches they
// had opened (a watch with an ID token goes on), and a new exchange works
// everywhere. A user who may not patch the Secret cannot do it. A kubectl
// user whose kip login cached a certificate of the old CA is served again
// by their next kubectl call, without signing in again: client-go asks kip
// login again after the 401, and kip login exchanges a new certificate.
func TestRevokeSignerCAReachesEveryReplica(t *testing.T) {
	ns := createNamespace(t)
	applyDeployedRole(t, ns, signerSecret)
	replicas := startReplicas(t, ns, 2, fastLease)
	name := harness.UniqueName("distrusted")
	want := idpUser(name)
	token := idToken(t, clientID, person(name))

	fromRetired := mustExchangeAt(t, replicas[0].config, token, nil)
	requested := time.Now().UTC().Format(time.RFC3339Nano)
	requestRotation(t, ns, requested)
	eventually(t, time.Minute, "the ordinary rotation never completed", func() bool {
		return getSecret(t, ns).Annotations[signer.RotateHandledAnnotation] == requested
	})
	rotatedCA := parseCert(t, string(getSecret(t, ns).Data[corev1.TLSCertKey]))
	fromSigning := signedBy(t, replicas[1], token, rotatedCA)
	old := map[string]*loginv1alpha1.ClusterCredential{"the retired CA's certificate": fromRetired, "the signing CA's certificate": fromSigning}
	for what, cred := range old {
		for _, r := range replicas {
			if got, err := whoami(t, withCert(r.config, cred)); err != nil {
				t.Fatalf("before: %s at replica %d: %v", what, r.index, err)
			} else {
				checkIdentity(t, got, want)
			}
		}
	}

	// Watches already past authentication, with each old certificate at
	// each replica, and one with the ID token, which no CA signed.
	bindView(t, ns, want.Username)
	var certWatches []<-chan struct{}
	for _, cred := range old {
		for _, r := range replicas {
			certWatches = append(certWatches, closed(startWatch(t, ns, withCert(r.config, cred))))
		}
	}
	tokenWatch := closed(startWatch(t, ns, withBearer(replicas[0].config, token)))

	kubectlUser := &signInCounter{who: person(harness.UniqueName("kubectl-distrusted"))}
	kubeconfig := replicaKubeconfig(t, replicas[0])
	if _, stderr, err := kubectlUser.kubectl(t, kubeconfig, "auth", "whoami"); err != nil {
		t.Fatalf("kubectl before: %v\n%s", err, stderr)
	}

	outsider := harness.UserKubeconfig(t, env.stack, harness.UniqueName("outsider"))
	if out, err := runKip(t, "revoke", "signer-ca", "--kubeconfig", outsider, "--secret", ns+"/"+signerSecret, "--timeout", "10s"); err == nil || !strings.Contains(out, "forbidden") {
		t.Fatalf("a user without rights on the Secret: %v\n%s", err, out)
	}

	start := time.Now()
	out, err := runKip(t, "revoke", "signer-ca", "--kubeconfig", env.stack.Cluster.AdminKubeconfig, "--secret", ns+"/"+signerSecret, "--timeout", "50s")
	if err != nil {
		t.Fatalf("kip revoke signer-ca: %v\n%s", err, out)
	}
	rotated := time.Since(start)
	t.Logf("kip revoke signer-ca returned after %v:\n%s", rotated.Round(time.Millisecond), out)
	if !strings.Contains(out, fmt.Sprintf("%x", rotatedCA.SerialNumber)) {
		t.Errorf("kip revoke signer-ca did not name the signing CA it distrusted (serial %x)", rotatedCA.SerialNumber)
	}
	for what, cred := range old {
		for _, r := range replicas {
			eventually(t, 10*time.Second, fmt.Sprintf("replica %d still accepts %s", r.index, what), func() bool {
				_, err := whoami(t, withCert(r.config, cred))
				return err != nil
			})
		}
	}
	t.Logf("every replica refused both old certificates %v after kip revoke signer-ca returned", (time.Since(start) - rotated).Round(time.Millisecond))
	for i, w := range certWatches {
		select {
		case <-w:
		case <-time.After(10 * time.Second):
			t.Errorf("watch %d of an old certificate was still open 10 s after the refusals", i)
		}
	}
	t.Logf("the old certificates' %d watches ended within %v after kip revoke signer-ca returned", len(certWatches), (time.Since(start) - rotated).Round(time.Millisecond))
	select {
	case <-tokenWatch:
		t.Error("the watch with an ID token was ended too")
	default:
	}
	for _, r := range replicas {
		m, err := harness.ScrapeMetrics(context.Background(), http.DefaultClient, r.ProbeURL+"/metrics")
		if err != nil {
			t.Fatal(err)
		}
		if n := m.Sample("kip_longrunning_ended_total", map[string]string{"reason": "ca-untrusted"}); n != 2 {
			t.Errorf("kip-%d counted %v requests ended for an untrusted CA, want its two watches", r.index, n)
		}
	}

	// kubectl's first call after meets the refused certificate; its
	// client-go asks kip login again, which exchanges the cached ID token
	// for a certificate of the new CA. The call after that is served.
	_, stderr, err := kubectlUser.kubectl(t, kubeconfig, "auth", "whoami")
	t.Logf("kubectl's first call after the distrust: %v\n%s", err, stderr)
	if _, stderr, err := kubectlUser.kubectl(t, kubeconfig, "auth", "whoami"); err != nil {
		t.Errorf("kubectl's second call after the distrust: %v\n%s", err, stderr)
	}
	if n := kubectlUser.take(); n != 1 {
		t.Errorf("%d sign-ins, want only the first: the cached ID token buys the new certificate", n)
	}

	newCA := parseCert(t, string(getSecret(t, ns).Data[corev1.TLSCertKey]))
	for _, issuer := range replicas {
		cred := signedBy(t, issuer, token, newCA)
		for _, verifier := range replicas {
			if got, err := whoami(t, withCert(verifier.config, cred)); err != nil {
				t.Errorf("after: a new certificate from replica %d at replica %d: %v", issuer.index, verifier.index, err)
			} else {
				checkIdentity(t, got, want)
			}
		}
	}
}

// signedBy exchanges token at r until the certificate it gets is signed by
// ca, which r uses once it has read the Secret.
func signedBy(t *testing.T, r *replica, token string, ca *x509.Certificate) *loginv1alpha1.ClusterCredential {
	t.Helper()
	var cred *loginv1alpha1.ClusterCredential
	eventually(t, 30*time.Second, fmt.Sprintf("replica %d never signed with %q", r.index, ca.Subject.CommonName), func() bool {
		cred = mustExchangeAt(t, r.config, token, nil)
		return parseCert(t, cred.ClientCertificateData).CheckSignatureFrom(ca) == nil
	})
	return cred
}

// replicaKubeconfig is userKubeconfig for r: kubectl signs in with kip
// login, in certificate mode, and reaches the cluster through r.
func replicaKubeconfig(t *testing.T, r *replica) string {
	t.Helper()
	path, args := kubeconfigArgs(t, "certificate", "--skip-browser")
	args = append(args, "--server="+r.URL, "--kip-command="+env.kip)
	if out, err := exec.Command(env.kip, args...).CombinedOutput(); err != nil {
		t.Fatalf("kip kubeconfig: %v\n%s", err, out)
	}
	return path
}
