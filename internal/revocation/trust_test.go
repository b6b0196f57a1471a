package revocation

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"sync"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"

	"github.com/kip-proxy/kip/internal/rig/pki"
)

// TestCAsLeavingTheBundleEndTheirRequests: a CA that leaves the bundle
// ends the running requests of its certificates, and only those; a CA
// added back, a bundle that cannot be read, and a change that keeps every
// CA end nothing.
func TestCAsLeavingTheBundleEndTheirRequests(t *testing.T) {
	a, b, c := pki.NewCAForTest(t, "ca a", time.Hour), pki.NewCAForTest(t, "ca b", time.Hour), pki.NewCAForTest(t, "ca c", time.Hour)
	cas := &notifyingCAs{}
	cas.set(a.CertPEM, b.CertPEM)
	running := &Running{}
	running.EndWhenUntrusted(cas)
	track := func(name string, ca *pki.CA) context.Context {
		end, done := running.Track(&user.DefaultInfo{Name: name}, clientCert(t, ca, name))
		t.Cleanup(done)
		return end
	}
	alice, bob := track("alice", a), track("bob", b)

	cas.set(b.CertPEM, a.CertPEM, c.CertPEM) // reordered, one added
	cas.set([]byte("not PEM"))
	never(t, alice, "a change that dropped no CA")
	never(t, bob, "a change that dropped no CA")

	cas.set(b.CertPEM)
	ended(t, alice, "CA a left the bundle")
	never(t, bob, "CA a left the bundle")

	carol := track("carol", a)
	cas.set(b.CertPEM, a.CertPEM) // a is back: nothing was dropped
	never(t, carol, "CA a came back")

	cas.set()
	ended(t, bob, "every CA left the bundle")
	ended(t, carol, "every CA left the bundle")
}

func ended(t *testing.T, end context.Context, what string) {
	t.Helper()
	select {
	case <-end.Done():
		if !errors.Is(context.Cause(end), ErrCAUntrusted) {
			t.Errorf("%s: ended with %v, want ErrCAUntrusted", what, context.Cause(end))
		}
	case <-time.After(5 * time.Second):
		t.Errorf("%s: a request of its certificate still runs", what)
	}
}

func never(t *testing.T, end context.Context, what string) {
	t.Helper()
	select {
	case <-end.Done():
		t.Errorf("%s: a request was ended (%v)", what, context.Cause(end))
	case <-time.After(100 * time.Millisecond):
	}
}

// notifyingCAs is a CA bundle that tells its listeners of each change, as
// kip's signer and the union of its CA sources do.
type notifyingCAs struct {
	mu        sync.Mutex
	bundle    []byte
	listeners []dynamiccertificates.Listener
}

func (n *notifyingCAs) set(pems ...[]byte) {
	n.mu.Lock()
	n.bundle = bytes.Join(pems, nil)
	listeners := n.listeners
	n.mu.Unlock()
	for _, l := range listeners {
		l.Enqueue()
	}
}

func (n *notifyingCAs) Name() string { return "test CAs" }

func (n *notifyingCAs) CurrentCABundleContent() []byte {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.bundle
}

func (n *notifyingCAs) VerifyOptions() (x509.VerifyOptions, bool) { return x509.VerifyOptions{}, false }

func (n *notifyingCAs) AddListener(l dynamiccertificates.Listener) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.listeners = append(n.listeners, l)
}
