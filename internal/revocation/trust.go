package revocation

import (
	"crypto/x509"
	"slices"
	"sync"

	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/util/cert"
	"k8s.io/klog/v2"
)

// EndWhenUntrusted ends, from now on, the running requests whose
// certificate was signed by a CA that leaves cas's bundle: kip's signer
// after `kip revoke signer-ca` or at the end of a retired CA's window,
// --client-ca-file edited, the cluster's client CA rotated. kip no longer
// trusts that CA, so nothing its certificates authenticated goes on.
func (r *Running) EndWhenUntrusted(cas dynamiccertificates.CAContentProvider) {
	if r == nil {
		return
	}
	w := &trustWatch{running: r, cas: cas}
	w.trusted, _ = cert.ParseCertsPEM(cas.CurrentCABundleContent())
	cas.AddListener(w)
}

// trustWatch remembers the CAs of a bundle, to tell which ones a change
// dropped.
type trustWatch struct {
	running *Running
	cas     dynamiccertificates.CAContentProvider

	// mu makes each change's read of the bundle and its comparison one
	// step: two changes compared out of order would take a CA just added
	// for one just dropped.
	mu      sync.Mutex
	trusted []*x509.Certificate
}

// Enqueue hears that the bundle changed. It must not wait: the ending
// happens on a goroutine of its own.
func (w *trustWatch) Enqueue() {
	w.mu.Lock()
	defer w.mu.Unlock()
	bundle := w.cas.CurrentCABundleContent()
	now, err := cert.ParseCertsPEM(bundle)
	if err != nil && len(bundle) > 0 {
		// The providers validate a bundle before they serve it; keep the
		// last one read rather than take every CA for dropped.
		klog.ErrorS(err, "Reading the changed client CA bundle; requests of CAs it may have dropped keep running")
		return
	}
	var dropped []*x509.Certificate
	for _, ca := range w.trusted {
		if !slices.ContainsFunc(now, ca.Equal) {
			dropped = append(dropped, ca)
		}
	}
	w.trusted = now
	if len(dropped) == 0 {
		return
	}
	go func() {
		n := w.running.endSignedBy(dropped)
		klog.InfoS("kip no longer trusts some client CAs; ended the running requests of their certificates", "cas", len(dropped), "ended", n)
	}()
}
