package identity

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/internal/rig/devstack"
	"github.com/kip-proxy/kip/internal/rig/harness"
)

// TestSignerSecretNotReachableThroughKip runs a replica with
// --signer-ca-secret and deploy/rbac.yaml's signer Role (the chart's,
// test/deploy TestChartGrantsTheDeployedRights), so that kip's own account
// may read and update the signer Secret (test/deploy
// TestChartSignerSecretException), and asks for that Secret through kip.
//
// Verdict: kip uses the exception itself (it created the Secret and signs
// with its CA), but no caller reaches it through kip. A signed-in user
// without rights on Secrets gets kube-apiserver's 403 naming that user for
// get, list and watch by name, update and delete: the upstream saw the
// user, never kip's account. Asking kip to impersonate kip's own account
// gets 403 from the SubjectAccessReview, and an anonymous caller 401. This
// is what kube-apiserver itself answers the same user.
func TestSignerSecretNotReachableThroughKip(t *testing.T) {
	ns := createNamespace(t)
	applyDeployedRole(t, ns, signerSecret)
	r, err := startReplica(t, ns, 0)
	if err != nil {
		t.Fatal(err)
	}
	name := harness.UniqueName("secret-seeker")
	cred := mustExchangeAt(t, r.config, idToken(t, clientID, person(name)), nil)
	if !strings.Contains(string(getSecret(t, ns).Data[corev1.TLSCertKey]), "CERTIFICATE") {
		t.Fatal("kip did not create its signer Secret")
	}
	cfg := withCert(r.config, cred)
	me, err := whoami(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	user := harness.Client(t, cfg)
	for _, c := range signerSecretRequests(ns) {
		t.Run(c.name, func(t *testing.T) {
			err := c.do(context.Background(), user)
			if !apierrors.IsForbidden(err) {
				t.Fatalf("got %v, want the upstream's 403", err)
			}
			if !strings.Contains(err.Error(), `User "`+me.Username+`"`) {
				t.Fatalf("the 403 does not name the caller %q: %v", me.Username, err)
			}
		})
	}
	t.Run("impersonating kip's own account", func(t *testing.T) {
		as := rest.CopyConfig(cfg)
		as.Impersonate = rest.ImpersonationConfig{UserName: devstack.KipUser}
		_, err := harness.Client(t, as).CoreV1().Secrets(ns).Get(context.Background(), signerSecret, metav1.GetOptions{})
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "impersonate") {
			t.Fatalf("got %v, want 403 for impersonating %s", err, devstack.KipUser)
		}
	})
	t.Run("anonymous", func(t *testing.T) {
		_, err := harness.Client(t, r.config).CoreV1().Secrets(ns).Get(context.Background(), signerSecret, metav1.GetOptions{})
		if statusCode(err) != http.StatusUnauthorized {
			t.Fatalf("got %v, want 401", err)
		}
	})
	t.Run("kube-apiserver directly, as the same user", func(t *testing.T) {
		direct, err := env.stack.Cluster.UserConfig(me.Username)
		if err != nil {
			t.Fatal(err)
		}
		_, err = harness.Client(t, direct).CoreV1().Secrets(ns).Get(context.Background(), signerSecret, metav1.GetOptions{})
		if !apierrors.IsForbidden(err) {
			t.Fatalf("got %v, want 403", err)
		}
	})
}

// signerSecretRequest is one request for the signer Secret.
type signerSecretRequest struct {
	name string
	do   func(ctx context.Context, c kubernetes.Interface) error
}

func signerSecretRequests(ns string) []signerSecretRequest {
	byName := metav1.ListOptions{FieldSelector: "metadata.name=" + signerSecret}
	return []signerSecretRequest{
		{"get", func(ctx context.Context, c kubernetes.Interface) error {
			_, err := c.CoreV1().Secrets(ns).Get(ctx, signerSecret, metav1.GetOptions{})
			return err
		}},
		{"list by name", func(ctx context.Context, c kubernetes.Interface) error {
			_, err := c.CoreV1().Secrets(ns).List(ctx, byName)
			return err
		}},
		{"watch by name", func(ctx context.Context, c kubernetes.Interface) error {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			w, err := c.CoreV1().Secrets(ns).Watch(ctx, byName)
			if err == nil {
				w.Stop()
			}
			return err
		}},
		{"update", func(ctx context.Context, c kubernetes.Interface) error {
			s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: signerSecret, Namespace: ns}, Type: corev1.SecretTypeTLS,
				Data: map[string][]byte{corev1.TLSCertKey: []byte("planted"), corev1.TLSPrivateKeyKey: []byte("planted")}}
			_, err := c.CoreV1().Secrets(ns).Update(ctx, s, metav1.UpdateOptions{})
			return err
		}},
		{"delete", func(ctx context.Context, c kubernetes.Interface) error {
			return c.CoreV1().Secrets(ns).Delete(ctx, signerSecret, metav1.DeleteOptions{})
		}},
	}
}
