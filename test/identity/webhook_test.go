package identity

import (
	"path/filepath"
	"time"

	"github.com/kip-proxy/kip/internal/rig/tokenwebhook"
	authenticationv1 "k8s.io/api/authentication/v1"
)

// webhookToken is the one token the test webhook accepts.
const webhookToken = "webhook-token-for-carol"

// webhookUser is who the webhook says webhookToken belongs to.
var webhookUser = authenticationv1.UserInfo{
	Username: "carol",
	UID:      "carol-uid-7",
	Groups:   []string{"webhook-users"},
	Extra:    map[string]authenticationv1.ExtraValue{"webhook.kip.dev/team": {"blue"}},
}

// webhookServer is the rig's token webhook, vouching for webhookUser,
// and the kubeconfig kip reads it by.
type webhookServer struct {
	*tokenwebhook.Webhook
	kubeconfig string
}

func startWebhook(dir string) (*webhookServer, error) {
	hook, err := tokenwebhook.Start(24 * time.Hour)
	if err != nil {
		return nil, err
	}
	hook.Vouch(webhookToken, webhookUser)
	w := &webhookServer{Webhook: hook, kubeconfig: filepath.Join(dir, "webhook.kubeconfig")}
	return w, hook.WriteKubeconfig(w.kubeconfig)
}
