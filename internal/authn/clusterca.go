package authn

import (
	"bytes"
	"context"
	"crypto/x509"
	"slices"
	"sync"

	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/util/cert"
)

// HandshakeCAs is the set of CAs the TLS handshake names when kip fronts
// many clusters: kip's own (its signer, --client-ca-file), which never
// change as clusters come and go, and each cluster's client CA, added and
// removed with the cluster. A client sends its certificate only when the
// handshake names the CA that signed it, so a cluster's CA must be here
// for its certificates to arrive at all; which cluster accepts them is
// decided later, by that cluster's authenticator alone.
type HandshakeCAs struct {
	own dynamiccertificates.CAContentProvider

	mu        sync.RWMutex
	byCluster map[string]dynamiccertificates.CAContentProvider
	listeners []dynamiccertificates.Listener
}

var (
	_ dynamiccertificates.CAContentProvider = (*HandshakeCAs)(nil)
	_ dynamiccertificates.ControllerRunner  = (*HandshakeCAs)(nil)
	_ dynamiccertificates.Notifier          = (*HandshakeCAs)(nil)
	_ dynamiccertificates.Listener          = (*HandshakeCAs)(nil)
)

// NewHandshakeCAs starts the set with kip's own CAs, which it runs the
// controllers of.
func NewHandshakeCAs(own ...dynamiccertificates.CAContentProvider) *HandshakeCAs {
	return &HandshakeCAs{own: UnionOf(own...), byCluster: map[string]dynamiccertificates.CAContentProvider{}}
}

// Set adds or replaces cluster's CA; its controller is the caller's to run.
func (h *HandshakeCAs) Set(cluster string, ca dynamiccertificates.CAContentProvider) {
	if n, ok := ca.(dynamiccertificates.Notifier); ok {
		n.AddListener(h)
	}
	h.mu.Lock()
	h.byCluster[cluster] = ca
	h.mu.Unlock()
	h.Enqueue()
}

// Remove drops cluster's CA, if it is still ca: a replaced entry's
// removal must not drop its successor's.
func (h *HandshakeCAs) Remove(cluster string, ca dynamiccertificates.CAContentProvider) {
	h.mu.Lock()
	if h.byCluster[cluster] == ca {
		delete(h.byCluster, cluster)
	}
	h.mu.Unlock()
	h.Enqueue()
}

// Name names the set in the generic server's log lines.
func (h *HandshakeCAs) Name() string { return "kip-and-cluster-client-cas" }

// CurrentCABundleContent is every CA's bundle, kip's first, then the
// clusters' in name order, so that the same set gives the same bytes.
func (h *HandshakeCAs) CurrentCABundleContent() []byte {
	bundles := [][]byte{h.own.CurrentCABundleContent()}
	h.mu.RLock()
	names := make([]string, 0, len(h.byCluster))
	for name := range h.byCluster {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		bundles = append(bundles, h.byCluster[name].CurrentCABundleContent())
	}
	h.mu.RUnlock()
	var out [][]byte
	for _, b := range bundles {
		if b = bytes.TrimSpace(b); len(b) > 0 {
			out = append(out, b)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

// VerifyOptions trusts every CA of the set. kip never verifies a client
// certificate with it (each cluster's authenticator has its own CAs); it
// is here because a CA provider must have it.
func (h *HandshakeCAs) VerifyOptions() (x509.VerifyOptions, bool) {
	certs, err := cert.ParseCertsPEM(h.CurrentCABundleContent())
	if err != nil || len(certs) == 0 {
		return x509.VerifyOptions{}, false
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, true
}

// AddListener is told of every change, kip's CAs' and the clusters'.
func (h *HandshakeCAs) AddListener(l dynamiccertificates.Listener) {
	if n, ok := h.own.(dynamiccertificates.Notifier); ok {
		n.AddListener(l)
	}
	h.mu.Lock()
	h.listeners = append(h.listeners, l)
	h.mu.Unlock()
}

// Enqueue passes a cluster CA's change on to the listeners.
func (h *HandshakeCAs) Enqueue() {
	h.mu.RLock()
	listeners := slices.Clone(h.listeners)
	h.mu.RUnlock()
	for _, l := range listeners {
		l.Enqueue()
	}
}

// RunOnce loads kip's own CAs.
func (h *HandshakeCAs) RunOnce(ctx context.Context) error {
	return h.own.(dynamiccertificates.ControllerRunner).RunOnce(ctx)
}

// Run runs kip's own CAs' controllers until ctx ends.
func (h *HandshakeCAs) Run(ctx context.Context, workers int) {
	h.own.(dynamiccertificates.ControllerRunner).Run(ctx, workers)
}
