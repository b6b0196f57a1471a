package identity

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kip-proxy/kip/internal/rig/harness"
)

// TestServiceAccountTokensSkipTheWebhook: a ServiceAccount token used
// through kip goes to the upstream's TokenReview only. It is served as the
// ServiceAccount; a forged copy is refused by the upstream; the exchange
// does not take it; and the operator's token webhook sees none of them. A
// token kip cannot place still goes to the webhook, which shows the count
// would move.
func TestServiceAccountTokensSkipTheWebhook(t *testing.T) {
	ns := createNamespace(t)
	admin := adminClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := admin.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "robot"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := admin.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "robot", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	saToken := tr.Status.Token
	if claims := decodeClaims(t, strings.Split(saToken, ".")[1]); claims["kubernetes.io"] == nil {
		t.Fatalf("the TokenRequest's token has no kubernetes.io claim: %v", claims)
	}
	saUser := "system:serviceaccount:" + ns + ":robot"

	t.Run("served as the ServiceAccount, never shown to the webhook", func(t *testing.T) {
		before := env.webhook.Reviews()
		got, err := whoami(t, bearerConfig(saToken))
		if err != nil || got.Username != saUser {
			t.Fatalf("whoami = %+v, %v; want %s", got, err, saUser)
		}
		if n := env.webhook.Reviews() - before; n != 0 {
			t.Errorf("the webhook saw %d reviews, want 0", n)
		}
	})
	t.Run("forged ServiceAccount token is refused upstream, never shown to the webhook", func(t *testing.T) {
		parts := strings.Split(saToken, ".")
		claims := decodeClaims(t, parts[1])
		claims["sub"] = "system:serviceaccount:" + ns + ":admin"
		forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString(mustJSON(t, claims)) + "." + parts[2]
		before := env.webhook.Reviews()
		if _, err := whoami(t, bearerConfig(forged)); !apierrors.IsUnauthorized(err) {
			t.Errorf("forged token: %v, want 401 Unauthorized", err)
		}
		if n := env.webhook.Reviews() - before; n != 0 {
			t.Errorf("the webhook saw %d reviews, want 0", n)
		}
	})
	t.Run("the exchange does not take it, nor ask the webhook", func(t *testing.T) {
		before := env.webhook.Reviews()
		out, err := exchange(t, saToken, nil)
		if err != nil || out.Status.Credential != nil || ptrString(out.Status.Message) != "authentication failed" {
			t.Errorf("exchange = %+v, %v; want only the message \"authentication failed\"", out.Status, err)
		}
		if n := env.webhook.Reviews() - before; n != 0 {
			t.Errorf("the webhook saw %d reviews, want 0", n)
		}
	})
	t.Run("control: a token kip cannot place goes to the webhook", func(t *testing.T) {
		before := env.webhook.Reviews()
		if _, err := whoami(t, bearerConfig(harness.UniqueName("opaque-token"))); !apierrors.IsUnauthorized(err) {
			t.Errorf("opaque token: %v, want 401 Unauthorized", err)
		}
		if env.webhook.Reviews() == before {
			t.Error("the webhook saw no review for an opaque token, so its count proves nothing")
		}
	})
}
