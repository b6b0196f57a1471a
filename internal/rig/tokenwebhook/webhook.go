package tokenwebhook

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kip-proxy/kip/internal/rig/pki"
)

// Webhook serves TokenReviews until Close.
type Webhook struct {
	// URL is the review endpoint.
	URL string
	// CAPEM is the CA of the webhook's serving certificate.
	CAPEM []byte

	server *httptest.Server

	mu      sync.Mutex
	users   map[string]authenticationv1.UserInfo
	reviews map[string]int
	total   int
}

// Start serves a webhook that vouches for nobody yet, with a serving
// certificate from a CA of its own, valid for validity.
func Start(validity time.Duration) (*Webhook, error) {
	ca, err := pki.NewCA("kip test token webhook CA", validity)
	if err != nil {
		return nil, err
	}
	certPEM, keyPEM, err := ca.IssueServing([]string{"127.0.0.1"}, validity)
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	w := &Webhook{CAPEM: ca.CertPEM, users: map[string]authenticationv1.UserInfo{}, reviews: map[string]int{}}
	w.server = httptest.NewUnstartedServer(http.HandlerFunc(w.review))
	w.server.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	w.server.StartTLS()
	w.URL = w.server.URL + "/review"
	return w, nil
}

// Vouch makes the webhook answer token with user from now on.
func (w *Webhook) Vouch(token string, user authenticationv1.UserInfo) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.users[token] = user
}

// Reviews counts every review the webhook has answered.
func (w *Webhook) Reviews() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.total
}

// ReviewsOf counts the reviews the webhook has answered for token.
func (w *Webhook) ReviewsOf(token string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.reviews[token]
}

// Kubeconfig is the file kip's --authentication-token-webhook-config-file
// (and the chart's tokenWebhook.kubeconfig) takes for this webhook.
func (w *Webhook) Kubeconfig() ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["webhook"] = &clientcmdapi.Cluster{Server: w.URL, CertificateAuthorityData: w.CAPEM}
	cfg.AuthInfos["kip"] = &clientcmdapi.AuthInfo{}
	cfg.Contexts["webhook"] = &clientcmdapi.Context{Cluster: "webhook", AuthInfo: "kip"}
	cfg.CurrentContext = "webhook"
	return clientcmd.Write(*cfg)
}

// WriteKubeconfig writes Kubeconfig to path, readable by its owner alone.
func (w *Webhook) WriteKubeconfig(path string) error {
	data, err := w.Kubeconfig()
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

// Close stops serving and waits for the reviews in flight.
func (w *Webhook) Close() { w.server.Close() }

// review answers one TokenReview: authenticated as the user vouched for,
// or not authenticated.
func (w *Webhook) review(rw http.ResponseWriter, r *http.Request) {
	var review authenticationv1.TokenReview
	if err := json.NewDecoder(r.Body).Decode(&review); err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	w.mu.Lock()
	w.total++
	w.reviews[review.Spec.Token]++
	user, ok := w.users[review.Spec.Token]
	w.mu.Unlock()
	review.Status = authenticationv1.TokenReviewStatus{Authenticated: ok}
	if ok {
		review.Status.User = user
	}
	rw.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(rw).Encode(&review)
}
