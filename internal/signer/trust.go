package signer

import (
	"bytes"
	"crypto/x509"
	"slices"
	"time"
)

// propagationGrace lengthens a retired CA's window beyond the longest
// certificate it could have signed: a replica that has not yet seen a
// rotation keeps signing with the old CA until the news reaches it.
const propagationGrace = 5 * time.Minute

// retiredCA is a CA that no longer signs but is still trusted until every
// certificate it may have signed has expired.
type retiredCA struct {
	cert       *x509.Certificate
	certPEM    []byte
	trustUntil time.Time
}

// trust is one immutable snapshot of what kip signs with and what it
// trusts. A new snapshot replaces the old one whole, so readers on the
// request path never see a half-made change.
type trust struct {
	signing *signingCA
	retired []retiredCA // ordered by trustUntil, earliest first
	bundle  []byte
	pool    *x509.CertPool
}

// newTrust builds a snapshot, dropping retired CAs whose window has ended
// at now and any retired copy of the signing CA itself.
func newTrust(signing *signingCA, retired []retiredCA, now time.Time) *trust {
	t := &trust{signing: signing, pool: x509.NewCertPool()}
	byCert := map[string]retiredCA{}
	for _, r := range retired {
		if !now.Before(r.trustUntil) || r.cert.Equal(signing.cert) {
			continue
		}
		// The same CA retired twice keeps the longer window.
		if prev, ok := byCert[string(r.cert.Raw)]; !ok || r.trustUntil.After(prev.trustUntil) {
			byCert[string(r.cert.Raw)] = r
		}
	}
	for _, r := range byCert {
		t.retired = append(t.retired, r)
	}
	slices.SortFunc(t.retired, func(a, b retiredCA) int {
		if c := a.trustUntil.Compare(b.trustUntil); c != 0 {
			return c
		}
		return bytes.Compare(a.cert.Raw, b.cert.Raw)
	})
	t.bundle = append(t.bundle, signing.certPEM...)
	t.pool.AddCert(signing.cert)
	for _, r := range t.retired {
		t.bundle = append(t.bundle, r.certPEM...)
		t.pool.AddCert(r.cert)
	}
	return t
}

// retire returns the window for a CA replaced at now: until every
// certificate it could still have signed has expired, and never past its
// own NotAfter, after which nothing it signed verifies anyway.
func retire(old *signingCA, now time.Time, maxTTL time.Duration) retiredCA {
	until := now.Add(maxTTL + propagationGrace)
	if old.cert.NotAfter.Before(until) {
		until = old.cert.NotAfter
	}
	return retiredCA{cert: old.cert, certPEM: old.certPEM, trustUntil: until}
}

// withSigning returns the snapshot after switching to next, keeping the
// previous signer trusted for its window. The same CA again is no change.
func (t *trust) withSigning(next *signingCA, now time.Time, maxTTL time.Duration) *trust {
	if t != nil && t.signing.cert.Equal(next.cert) {
		return newTrust(next, t.retired, now)
	}
	var retired []retiredCA
	if t != nil {
		retired = append(slices.Clone(t.retired), retire(t.signing, now, maxTTL))
	}
	return newTrust(next, retired, now)
}

// pruned drops retired CAs whose window has ended at now.
func (t *trust) pruned(now time.Time) *trust {
	return newTrust(t.signing, t.retired, now)
}

// nextExpiry is when the earliest retired window ends; zero if none.
func (t *trust) nextExpiry() time.Time {
	if len(t.retired) == 0 {
		return time.Time{}
	}
	return t.retired[0].trustUntil
}

// dueForRotation reports whether the signing CA has less than a fifth of
// its lifetime left: early enough that certificates never get cut short by
// the CA's own expiry, and that a failed rotation has weeks to be retried.
func (t *trust) dueForRotation(now time.Time) bool {
	c := t.signing.cert
	lifetime := c.NotAfter.Sub(c.NotBefore)
	return c.NotAfter.Sub(now) < lifetime/5
}
