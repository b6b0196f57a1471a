package rig

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kip-proxy/kip/internal/rig/pki"
)

const (
	// WebhookUser is whom the token webhook says WebhookToken belongs to.
	WebhookUser = "kip-bench-webhook"
	// WebhookToken is the one token the webhook accepts. A constant is
	// enough: the webhook listens on loopback for one run.
	WebhookToken = "kip-bench-webhook-token"
)

// tokenWebhook is a TokenReview webhook in kube-apiserver's format on
// loopback TLS, inside the benchmark process: the numbers then depend on
// kip and not on an identity provider.
type tokenWebhook struct {
	// kubeconfig names the webhook as kip's
	// --authentication-token-webhook-config-file wants it.
	kubeconfig string
	// reviews counts the TokenReviews answered, which shows how often
	// kip's cache answered instead.
	reviews atomic.Int64
	server  *http.Server
	done    chan error
}

// startTokenWebhook serves the webhook with a certificate from ca and
// writes its kubeconfig into dir.
func startTokenWebhook(ca *pki.CA, dir string) (*tokenWebhook, error) {
	certPEM, keyPEM, err := ca.IssueServing([]string{"127.0.0.1"}, 24*time.Hour)
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	w := &tokenWebhook{kubeconfig: filepath.Join(dir, "token-webhook.kubeconfig"), done: make(chan error, 1)}
	w.server = &http.Server{
		Handler:           http.HandlerFunc(w.review),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { w.done <- w.server.ServeTLS(ln, "", "") }()
	if err := writeWebhookKubeconfig(w.kubeconfig, "https://"+ln.Addr().String()+"/review", ca.CertPEM); err != nil {
		return nil, errors.Join(err, w.stop())
	}
	return w, nil
}

func writeWebhookKubeconfig(path, url string, caPEM []byte) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["webhook"] = &clientcmdapi.Cluster{Server: url, CertificateAuthorityData: caPEM}
	cfg.AuthInfos["kip"] = &clientcmdapi.AuthInfo{}
	cfg.Contexts["webhook"] = &clientcmdapi.Context{Cluster: "webhook", AuthInfo: "kip"}
	cfg.CurrentContext = "webhook"
	return clientcmd.WriteToFile(*cfg, path)
}

// review answers a TokenReview: WebhookToken is WebhookUser, anything else
// is unauthenticated.
func (w *tokenWebhook) review(rw http.ResponseWriter, r *http.Request) {
	var review authenticationv1.TokenReview
	if err := json.NewDecoder(r.Body).Decode(&review); err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	w.reviews.Add(1)
	if review.Spec.Token == WebhookToken {
		review.Status = authenticationv1.TokenReviewStatus{Authenticated: true, User: authenticationv1.UserInfo{
			Username: WebhookUser, UID: WebhookUser + "-uid", Groups: []string{"kip-bench-users"},
		}}
	}
	rw.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(rw).Encode(&review)
}

func (w *tokenWebhook) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := w.server.Shutdown(ctx)
	if serveErr := <-w.done; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	return err
}
