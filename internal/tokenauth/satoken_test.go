package tokenauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	tokenunion "k8s.io/apiserver/pkg/authentication/token/union"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// jwtWith is an unsigned-looking compact JWS with payload as its claims;
// the signature does not matter to isServiceAccountToken.
func jwtWith(payload string) string {
	b64 := base64.RawURLEncoding.EncodeToString
	return b64([]byte(`{"alg":"RS256","kid":"k"}`)) + "." + b64([]byte(payload)) + ".c2ln"
}

func TestIsServiceAccountToken(t *testing.T) {
	b64 := base64.RawURLEncoding.EncodeToString
	bound := `{"aud":["https://kubernetes.default.svc"],"iss":"https://kubernetes.default.svc","sub":"system:serviceaccount:ns:sa",` +
		`"kubernetes.io":{"namespace":"ns","serviceaccount":{"name":"sa","uid":"u"}}}`
	tests := []struct {
		name  string
		token string
		want  bool
	}{
		{name: "bound ServiceAccount token", token: jwtWith(bound), want: true},
		{name: "bound token from another issuer", token: jwtWith(`{"iss":"https://oidc.eks.example","kubernetes.io":{}}`), want: true},
		{name: "kubernetes.io claim that is null", token: jwtWith(`{"kubernetes.io":null}`), want: true},
		{name: "legacy Secret token", token: jwtWith(`{"iss":"kubernetes/serviceaccount","sub":"system:serviceaccount:ns:sa"}`), want: true},
		{name: "legacy claims without the issuer", token: jwtWith(`{"kubernetes.io/serviceaccount/namespace":"ns"}`), want: true},
		{name: "padded payload", token: b64([]byte(`{}`)) + "." + base64.URLEncoding.EncodeToString([]byte(`{"kubernetes.io":{}}`)) + ".c2ln", want: true},
		{name: "claim repeated", token: jwtWith(`{"kubernetes.io":1,"kubernetes.io":{}}`), want: true},

		{name: "OIDC ID token", token: jwtWith(`{"iss":"https://idp.example","sub":"alice","email":"alice@example.com"}`)},
		{name: "opaque webhook token", token: "webhook-token-for-carol"},
		{name: "empty token"},
		{name: "two segments", token: b64([]byte(`{}`)) + "." + b64([]byte(`{"kubernetes.io":{}}`))},
		{name: "JWE-shaped, five segments", token: "a." + b64([]byte(`{"kubernetes.io":{}}`)) + ".c.d.e"},
		{name: "four segments", token: jwtWith(`{"kubernetes.io":{}}`) + ".x"},
		{name: "payload not base64url", token: "a.!!!.c"},
		{name: "payload standard base64 with + and /", token: "a." + base64.StdEncoding.EncodeToString([]byte(`{"kubernetes.io":">>>???"}`)) + ".c"},
		{name: "payload not JSON", token: jwtWith(`kubernetes.io`)},
		{name: "payload a JSON array", token: jwtWith(`["kubernetes.io"]`)},
		{name: "payload a JSON string", token: jwtWith(`"kubernetes.io"`)},
		{name: "claim in other letter case", token: jwtWith(`{"Kubernetes.IO":{}}`)},
		{name: "claim with a suffix", token: jwtWith(`{"kubernetes.io.example.com":{}}`)},
		{name: "claim nested", token: jwtWith(`{"ext":{"kubernetes.io":{}}}`)},
		{name: "claim only in a value", token: jwtWith(`{"aud":"kubernetes.io"}`)},
		{name: "claim in the header", token: b64([]byte(`{"kubernetes.io":{}}`)) + "." + b64([]byte(`{}`)) + ".c"},
		{name: "legacy issuer in other letter case", token: jwtWith(`{"iss":"Kubernetes/ServiceAccount"}`)},
		{name: "issuer not a string", token: jwtWith(`{"iss":["kubernetes/serviceaccount"]}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isServiceAccountToken(tt.token); got != tt.want {
				t.Errorf("isServiceAccountToken(%q) = %v, want %v", tt.token, got, tt.want)
			}
		})
	}
}

// TestServiceAccountTokensNeverReachTheWebhook builds kip's verifiers
// with a real token webhook on loopback TLS, and puts the upstream's
// TokenReview after them as kip's authenticator does. A ServiceAccount
// token, valid or forged, is decided by the upstream alone; other tokens
// still go to the webhook first.
func TestServiceAccountTokensNeverReachTheWebhook(t *testing.T) {
	hook := startTestWebhook(t, map[string]authenticationv1.UserInfo{
		"webhook-token": {Username: "carol", Groups: []string{"webhook-users"}},
	})
	saToken := jwtWith(`{"iss":"https://kubernetes.default.svc","sub":"system:serviceaccount:ns:sa","kubernetes.io":{"namespace":"ns"}}`)
	forgedSAToken := jwtWith(`{"iss":"https://evil.example","sub":"system:serviceaccount:ns:sa","kubernetes.io":{"namespace":"ns"}}`)
	upstream := authenticator.TokenFunc(func(_ context.Context, token string) (*authenticator.Response, bool, error) {
		if token == saToken {
			return &authenticator.Response{User: &user.DefaultInfo{Name: "system:serviceaccount:ns:sa"}}, true, nil
		}
		return nil, false, nil
	})
	v, err := New(context.Background(), Config{WebhookConfigFile: hook.kubeconfig, WebhookCacheTTL: time.Minute,
		RefusedUsername: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	all := tokenunion.NewFailOnError(v, upstream)

	tests := []struct {
		name        string
		token       string
		wantUser    string // "" for a refusal
		wantWebhook bool   // the webhook is asked
	}{
		{name: "ServiceAccount token goes upstream only", token: saToken, wantUser: "system:serviceaccount:ns:sa"},
		{name: "forged ServiceAccount token is refused upstream, never offered to the webhook", token: forgedSAToken},
		{name: "legacy ServiceAccount token", token: jwtWith(`{"iss":"kubernetes/serviceaccount"}`)},
		{name: "webhook token", token: "webhook-token", wantUser: "carol", wantWebhook: true},
		{name: "unknown opaque token is offered to the webhook", token: "garbage", wantWebhook: true},
		{name: "JWT from an unknown issuer is offered to the webhook", token: jwtWith(`{"iss":"https://idp.example"}`), wantWebhook: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := hook.seen(tt.token)
			resp, ok, err := all.AuthenticateToken(context.Background(), tt.token)
			if tt.wantUser == "" {
				if ok {
					t.Errorf("accepted as %s, want a refusal", resp.User.GetName())
				}
			} else if !ok || err != nil || resp.User.GetName() != tt.wantUser {
				t.Errorf("got %v, %v, %v; want %s", resp, ok, err, tt.wantUser)
			}
			if asked := hook.seen(tt.token) > before; asked != tt.wantWebhook {
				t.Errorf("the webhook was asked: %v, want %v", asked, tt.wantWebhook)
			}
		})
	}
}

// testWebhook is a TokenReview webhook in kube-apiserver's format that
// counts the reviews it gets per token.
type testWebhook struct {
	kubeconfig string
	mu         sync.Mutex
	reviews    map[string]int
}

func (w *testWebhook) seen(token string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.reviews[token]
}

func startTestWebhook(t *testing.T, users map[string]authenticationv1.UserInfo) *testWebhook {
	t.Helper()
	w := &testWebhook{reviews: map[string]int{}}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var review authenticationv1.TokenReview
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		w.mu.Lock()
		w.reviews[review.Spec.Token]++
		w.mu.Unlock()
		if u, ok := users[review.Spec.Token]; ok {
			review.Status = authenticationv1.TokenReviewStatus{Authenticated: true, User: u}
		}
		rw.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(rw).Encode(&review)
	}))
	t.Cleanup(srv.Close)
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["webhook"] = &clientcmdapi.Cluster{Server: srv.URL,
		CertificateAuthorityData: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})}
	cfg.AuthInfos["kip"] = &clientcmdapi.AuthInfo{}
	cfg.Contexts["webhook"] = &clientcmdapi.Context{Cluster: "webhook", AuthInfo: "kip"}
	cfg.CurrentContext = "webhook"
	w.kubeconfig = filepath.Join(t.TempDir(), "webhook.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, w.kubeconfig); err != nil {
		t.Fatal(err)
	}
	return w
}
