package identity

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kip-proxy/kip/internal/rig/pki"
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

// webhookServer is a TokenReview webhook in kube-apiserver's format, on
// loopback TLS, counting the reviews it answers.
type webhookServer struct {
	*httptest.Server
	kubeconfig string

	mu      sync.Mutex
	reviews int
}

func startWebhook(dir string) (*webhookServer, error) {
	w := &webhookServer{}
	ca, err := pki.NewCA("kip test webhook CA", 24*time.Hour)
	if err != nil {
		return nil, err
	}
	certPEM, keyPEM, err := ca.IssueServing([]string{"127.0.0.1"}, 24*time.Hour)
	if err != nil {
		return nil, err
	}
	w.Server = httptest.NewUnstartedServer(http.HandlerFunc(w.review))
	if w.TLS, err = serverTLS(certPEM, keyPEM); err != nil {
		return nil, err
	}
	w.StartTLS()
	w.kubeconfig = filepath.Join(dir, "webhook.kubeconfig")
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["webhook"] = &clientcmdapi.Cluster{Server: w.URL + "/review", CertificateAuthorityData: ca.CertPEM}
	cfg.AuthInfos["kip"] = &clientcmdapi.AuthInfo{}
	cfg.Contexts["webhook"] = &clientcmdapi.Context{Cluster: "webhook", AuthInfo: "kip"}
	cfg.CurrentContext = "webhook"
	return w, clientcmd.WriteToFile(*cfg, w.kubeconfig)
}

func (w *webhookServer) review(rw http.ResponseWriter, r *http.Request) {
	var review authenticationv1.TokenReview
	if err := json.NewDecoder(r.Body).Decode(&review); err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	w.mu.Lock()
	w.reviews++
	w.mu.Unlock()
	if review.Spec.Token == webhookToken {
		review.Status = authenticationv1.TokenReviewStatus{Authenticated: true, User: webhookUser}
	}
	rw.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(rw).Encode(&review)
}

func (w *webhookServer) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.reviews
}

func serverTLS(certPEM, keyPEM []byte) (*tls.Config, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}
