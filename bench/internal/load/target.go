package load

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// Target is one way to reach an API server: directly, or through a proxy.
type Target struct {
	Name string
	// URL is the base address, without a trailing slash.
	URL    string
	Client *http.Client
	// Header is added to every request: a bearer token, for instance.
	Header http.Header
	// PID is the proxy process whose CPU and memory are measured; 0 when
	// the target is no process of ours.
	PID int
	// dials counts the connections the client opened.
	dials *atomic.Int64
}

// NewTarget returns a target with a client of its own. A nil tlsConfig
// means plain HTTP (HTTP/1.1); otherwise the client offers HTTP/2, which
// kube-apiserver and kip speak.
func NewTarget(name, url string, tlsConfig *tls.Config, pid int) *Target {
	dials := new(atomic.Int64)
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	transport := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return dialer.DialContext(ctx, network, addr)
		},
		ForceAttemptHTTP2:   tlsConfig != nil,
		MaxIdleConnsPerHost: 512,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
		// Accept-Encoding is set per request where a workload wants it, so
		// that every target sees exactly the same request.
		DisableCompression: true,
	}
	if tlsConfig != nil {
		transport.TLSClientConfig = tlsConfig.Clone()
	}
	return &Target{Name: name, URL: url, Client: &http.Client{Transport: transport}, PID: pid, dials: dials}
}

// Dials returns how many connections the target's client has opened.
func (t *Target) Dials() int64 { return t.dials.Load() }

// OneRequestPerConnection makes the client dial a new connection for each
// request and close it after the answer, as a short-lived process such as
// `kip login` does.
func (t *Target) OneRequestPerConnection() {
	t.Client.Transport.(*http.Transport).DisableKeepAlives = true
}

// CloseIdle closes the client's idle connections, so that the next
// workload starts from the same state on every target.
func (t *Target) CloseIdle() { t.Client.CloseIdleConnections() }

// NewRequest builds a GET of path on t with t's headers and extra.
func (t *Target) NewRequest(ctx context.Context, path string, extra http.Header) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.URL+path, nil)
	if err != nil {
		return nil, err
	}
	for _, h := range []http.Header{t.Header, extra} {
		for k, v := range h {
			req.Header[k] = v
		}
	}
	return req, nil
}
