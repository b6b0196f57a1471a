package rig

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/kip-proxy/kip/internal/rig/devstack"
)

// trivialUpstream answers every GET with the same small ConfigMap, the
// health paths with "ok", and a SelfSubjectReview with kip's own user (kip
// asks who it is upstream before it serves anyone): the least an API
// server can do, so that what is left of a request's cost through it is
// the proxy's.
type trivialUpstream struct {
	URL    string
	server *http.Server
	done   chan error
}

func startTrivialUpstream(certPEM, keyPEM, body []byte) (*trivialUpstream, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	for _, path := range []string{"/readyz", "/livez", "/healthz"} {
		mux.HandleFunc(path, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	}
	mux.HandleFunc("POST /apis/authentication.k8s.io/v1/selfsubjectreviews", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(selfSubjectReview)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	u := &trivialUpstream{
		URL: "https://" + ln.Addr().String(),
		server: &http.Server{
			Handler:           mux,
			TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
			ReadHeaderTimeout: 10 * time.Second,
		},
		done: make(chan error, 1),
	}
	// ServeTLS offers HTTP/2, as kube-apiserver does.
	go func() { u.done <- u.server.ServeTLS(ln, "", "") }()
	return u, nil
}

// selfSubjectReview names the user of the certificate kip is given for the
// trivial upstream (see trivialKubeconfig).
var selfSubjectReview = []byte(`{"kind":"SelfSubjectReview","apiVersion":"authentication.k8s.io/v1","metadata":{},` +
	`"status":{"userInfo":{"username":"` + devstack.KipUser + `"}}}`)

func (u *trivialUpstream) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := u.server.Shutdown(ctx)
	if serveErr := <-u.done; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	return err
}
