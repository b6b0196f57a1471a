package signer

import (
	"bytes"
	"context"
	"crypto/x509"
	"sync"
	"sync/atomic"

	"k8s.io/apiserver/pkg/server/dynamiccertificates"
)

// source is where a CA's signing key comes from: files or a Secret.
type source interface {
	// sync reads the source once.
	sync(ctx context.Context) error
	// watch follows the source until ctx is done.
	watch(ctx context.Context)
	// maintain is run periodically, for rotation or expiry warnings.
	maintain(ctx context.Context)
	// rotate replaces the signing CA; onlyIfDue skips it unless the CA
	// the source holds right now is due for rotation.
	rotate(ctx context.Context, onlyIfDue bool) error
}

// CA is kip's signer certificate authority. It signs client certificates
// with its current CA and trusts the current CA plus every retired CA still
// inside its window. It is a dynamiccertificates.CAContentProvider, so it
// joins kip's client CA union, and a ControllerRunner, so the generic
// server keeps it up to date.
type CA struct {
	name string
	opts Options
	src  source

	state atomic.Pointer[trust]

	// mu serializes changes to state and to listeners.
	mu        sync.Mutex
	listeners []dynamiccertificates.Listener
}

var (
	_ dynamiccertificates.CAContentProvider = (*CA)(nil)
	_ dynamiccertificates.ControllerRunner  = (*CA)(nil)
)

// Name identifies the CA in logs.
func (c *CA) Name() string { return c.name }

// CurrentCABundleContent is the PEM bundle of every CA kip trusts for its
// own certificates: the signing CA first, then retired ones.
func (c *CA) CurrentCABundleContent() []byte {
	return bytes.Clone(c.state.Load().bundle)
}

// VerifyOptions verifies client certificates against the trusted bundle at
// the CA's clock's current time.
func (c *CA) VerifyOptions() (x509.VerifyOptions, bool) {
	t := c.state.Load()
	return x509.VerifyOptions{
		Roots:       t.pool,
		CurrentTime: c.opts.Clock.Now(),
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, true
}

// AddListener registers l to be told whenever the trusted bundle changes.
func (c *CA) AddListener(l dynamiccertificates.Listener) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.listeners = append(c.listeners, l)
}

// update replaces the snapshot with change(current) and tells listeners if
// the trusted bundle changed.
func (c *CA) update(change func(*trust) *trust) {
	c.mu.Lock()
	old := c.state.Load()
	next := change(old)
	c.state.Store(next)
	var notify []dynamiccertificates.Listener
	if old == nil || !bytes.Equal(old.bundle, next.bundle) {
		notify = append(notify, c.listeners...)
	}
	c.mu.Unlock()
	for _, l := range notify {
		l.Enqueue()
	}
}

// prune drops retired CAs whose window has ended.
func (c *CA) prune() {
	now := c.opts.Clock.Now()
	c.update(func(t *trust) *trust { return t.pruned(now) })
}

// Rotate replaces the signing CA with a fresh one, keeping the old one
// trusted for its window. Only a Secret-backed CA can rotate itself; a
// file-backed one is rotated by replacing its files.
func (c *CA) Rotate(ctx context.Context) error {
	return c.src.rotate(ctx, false)
}
