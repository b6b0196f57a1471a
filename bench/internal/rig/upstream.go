package rig

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"time"
)

// trivialUpstream answers every GET with the same small ConfigMap, and the
// health paths with "ok": the least an API server can do, so that what is
// left of a request's cost through it is the proxy's.
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

func (u *trivialUpstream) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := u.server.Shutdown(ctx)
	if serveErr := <-u.done; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	return err
}
