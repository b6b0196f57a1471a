package integration

import (
	"bytes"
	"context"
	"encoding/pem"
	"net/http"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/kip-proxy/kip/internal/rig/harness"
	"github.com/kip-proxy/kip/internal/rig/pki"
)

// TestClusterClientCALeavingEndsItsRequests: kip follows the cluster's
// client CA bundle (kube-system/extension-apiserver-authentication,
// --trust-cluster-client-ca, on by default). A CA added there is trusted;
// once it leaves, the watch its certificate opened ends and the same
// certificate is refused on the connection it used, while a watch of a
// certificate from the cluster's own CA goes on. kube-apiserver keeps
// what others put in the bundle and adds its own CA back, so the test's CA
// stays gone once removed.
func TestClusterClientCALeavingEndsItsRequests(t *testing.T) {
	extra := pki.NewCAForTest(t, "kip-extra-cluster-client-ca", 24*time.Hour)
	editClusterClientCAs(t, func(bundle []byte) []byte {
		return append(append(bytes.TrimRight(bundle, "\n"), '\n'), extra.CertPEM...)
	})
	// Removed again should the test stop early; removing twice is harmless.
	t.Cleanup(func() { editClusterClientCAs(t, func(b []byte) []byte { return withoutCert(b, extra.Cert.Raw) }) })

	user, bystander := harness.UniqueName("cluster-ca-removed"), harness.UniqueName("cluster-ca-kept")
	cert := rawClientCert(t, extra, pki.ClientCertRequest{CommonName: user})
	client, _ := oneConnectionClient(t, cert)
	harness.Eventually(t, time.Minute, func() error { return expectStatus(client, stack.KipURL, http.StatusCreated) })

	ns := createNamespace(t)
	removedWatch := watchUntilEnded(t, stack.KipURL, ns, cert, user)
	keptWatch := watchUntilEnded(t, stack.KipURL, ns, rawUserCert(t, bystander), bystander)

	editClusterClientCAs(t, func(b []byte) []byte { return withoutCert(b, extra.Cert.Raw) })
	wantOnlyRemovedEnded(t, removedWatch, keptWatch, "the bundle changed")
	harness.Eventually(t, clientCACutOff, func() error { return expectStatus(client, stack.KipURL, http.StatusUnauthorized) })
}

// editClusterClientCAs rewrites the cluster's client CA bundle with edit,
// retrying when kube-apiserver writes it meanwhile.
func editClusterClientCAs(t *testing.T, edit func([]byte) []byte) {
	t.Helper()
	cms := adminClient(t).CoreV1().ConfigMaps("kube-system")
	ctx := context.Background()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cm, err := cms.Get(ctx, "extension-apiserver-authentication", metav1.GetOptions{})
		if err != nil {
			return err
		}
		cm.Data["client-ca-file"] = string(edit([]byte(cm.Data["client-ca-file"])))
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("editing the cluster's client CA bundle: %v", err)
	}
}

// withoutCert is bundle without the certificate der, whatever its PEM
// line breaks.
func withoutCert(bundle, der []byte) []byte {
	var out []byte
	for rest := bundle; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return out
		}
		if !bytes.Equal(block.Bytes, der) {
			out = append(out, pem.EncodeToMemory(block)...)
		}
	}
}
