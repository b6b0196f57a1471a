package integration

import (
	"context"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/internal/rig/devstack"
	"github.com/kip-proxy/kip/internal/rig/harness"
)

// TestServiceAccountTokenPassesThrough proves a token the upstream can
// verify itself reaches it unchanged: the request runs as the service
// account with its own UID, and the upstream's audit log shows the service
// account as the authenticated user, not kip impersonating it.
func TestServiceAccountTokenPassesThrough(t *testing.T) {
	ctx := context.Background()
	ns := createNamespace(t)
	admin := adminClient(t)
	sa, err := admin.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "robot"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	saUser := "system:serviceaccount:" + ns + ":robot"
	grant(t, ns, rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "robot", Namespace: ns}, configMapRules...)
	tr, err := admin.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "robot", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	client := kubernetes.NewForConfigOrDie(&rest.Config{
		Host:            stack.KipURL,
		BearerToken:     tr.Status.Token,
		TLSClientConfig: rest.TLSClientConfig{CAData: stack.KipCAPEM},
	})

	review, err := client.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := review.Status.UserInfo; got.Username != saUser || got.UID != string(sa.UID) {
		t.Fatalf("whoami = %s (uid %s), want %s (uid %s)", got.Username, got.UID, saUser, sa.UID)
	}

	marker := harness.UniqueName("sa-marker")
	if _, err := client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: marker}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("the service account may create ConfigMaps in %s: %v", ns, err)
	}
	// The name is in the URI of a GET, where the audit log can find it.
	if _, err := client.CoreV1().ConfigMaps(ns).Get(ctx, marker, metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, ev := range auditEvents(t, marker) {
		if ev.User.Username != saUser || ev.ImpersonatedUser != nil {
			t.Errorf("upstream audit: user %q impersonating %v; want %q itself, passed through", ev.User.Username, ev.ImpersonatedUser, saUser)
		}
	}
}

// TestCertificateUserIsImpersonated is the other side: a user only kip can
// verify reaches the upstream as kip impersonating that user.
func TestCertificateUserIsImpersonated(t *testing.T) {
	ns := createNamespace(t)
	user := harness.UniqueName("certuser")
	client := kubernetes.NewForConfigOrDie(stack.UserConfigFor(user))
	marker := harness.UniqueName("cert-marker")
	_, _ = client.CoreV1().ConfigMaps(ns).Get(context.Background(), marker, metav1.GetOptions{})
	for _, ev := range auditEvents(t, marker) {
		if ev.User.Username != devstack.KipUser || ev.ImpersonatedUser == nil || ev.ImpersonatedUser.Username != user {
			t.Errorf("upstream audit: user %q impersonating %v; want %q impersonating %q", ev.User.Username, ev.ImpersonatedUser, devstack.KipUser, user)
		}
	}
}
