package rig

import (
	"path/filepath"
	"time"

	"github.com/kip-proxy/kip/internal/rig/tokenwebhook"
	authenticationv1 "k8s.io/api/authentication/v1"
)

const (
	// WebhookUser is whom the token webhook says WebhookToken belongs to.
	WebhookUser = "kip-bench-webhook"
	// WebhookToken is the one token the webhook accepts. A constant is
	// enough: the webhook listens on loopback for one run.
	WebhookToken = "kip-bench-webhook-token"
)

// startTokenWebhook serves the rig's TokenReview webhook inside the
// benchmark process, on loopback TLS, so the numbers depend on kip and not
// on an identity provider; it vouches for WebhookToken and writes its
// kubeconfig into dir.
func startTokenWebhook(dir string) (hook *tokenwebhook.Webhook, kubeconfig string, err error) {
	if hook, err = tokenwebhook.Start(24 * time.Hour); err != nil {
		return nil, "", err
	}
	hook.Vouch(WebhookToken, authenticationv1.UserInfo{Username: WebhookUser, UID: WebhookUser + "-uid", Groups: []string{"kip-bench-users"}})
	kubeconfig = filepath.Join(dir, "token-webhook.kubeconfig")
	if err := hook.WriteKubeconfig(kubeconfig); err != nil {
		hook.Close()
		return nil, "", err
	}
	return hook, kubeconfig, nil
}
