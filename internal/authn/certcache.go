package authn

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"time"

	"k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	certutil "k8s.io/client-go/util/cert"
)

// verifiedCertificates remembers, for a short while, which client
// certificate chains verified against which CA bundle. Verifying a chain
// costs an ECDSA or RSA signature check per certificate, on every request;
// a client reuses its certificate for thousands of requests. Only successes
// are kept, the key covers the exact CA bundle and the whole presented
// chain, and an entry never outlives any certificate in either, so a
// removed CA or an expired certificate is refused as before.
//
// Within one connection even that key is more work than needed: the TLS
// handshake fixed the chain, and Go's HTTP/1.1 and HTTP/2 servers give
// every request of a connection the same *tls.ConnectionState. So the
// answer is also remembered per connection, keyed by that pointer, and
// reused only while the CA bundle is byte for byte the one it was reached
// with and no certificate has expired. There, refusals are remembered too
// (the other CA's authenticator refuses every request of a connection),
// but only once every certificate involved is past its NotBefore, so that
// nothing but a change of the bundle could turn a refusal into a success.
type verifiedCertificates struct {
	verify authenticator.Request
	// cas are the sources of the CA bundle, each compared on its own.
	cas   []dynamiccertificates.CAContentProvider
	cache *cache.LRUExpireCache
	// conns maps a *tls.ConnectionState to its connEntry. The map holds
	// the pointer, so a closed connection's state cannot be freed and its
	// address reused by another connection while its entry lives.
	conns *cache.LRUExpireCache
	ttl   time.Duration
	now   func() time.Time
}

// connEntry is one connection's answer and the bundles it was reached with.
type connEntry struct {
	bundles [][]byte
	resp    *authenticator.Response
	ok      bool
	err     error
}

// certCacheKey is a digest of each source's CA bundle followed by each
// presented certificate, all length-prefixed, so that no two different
// inputs share a key.
type certCacheKey [sha256.Size]byte

func newVerifiedCertificates(verify authenticator.Request, cas dynamiccertificates.CAContentProvider, ttl time.Duration) *verifiedCertificates {
	return &verifiedCertificates{
		verify: verify, cas: sourcesOf(cas), ttl: ttl, now: time.Now,
		cache: cache.NewLRUExpireCache(4096), conns: cache.NewLRUExpireCache(4096),
	}
}

func (v *verifiedCertificates) AuthenticateRequest(req *http.Request) (*authenticator.Response, bool, error) {
	if req.TLS == nil || len(req.TLS.PeerCertificates) == 0 {
		return v.verify.AuthenticateRequest(req)
	}
	if e, ok := v.conns.Get(req.TLS); ok {
		if e := e.(*connEntry); v.unchanged(e.bundles) {
			return e.resp, e.ok, e.err
		}
	}
	bundles := v.bundles()
	resp, ok, err := v.authenticateChain(req, bundles)
	v.rememberConn(req.TLS, &connEntry{bundles: bundles, resp: resp, ok: ok, err: err})
	return resp, ok, err
}

func (v *verifiedCertificates) bundles() [][]byte {
	bundles := make([][]byte, len(v.cas))
	for i, ca := range v.cas {
		bundles[i] = ca.CurrentCABundleContent()
	}
	return bundles
}

// unchanged reports whether every source's bundle is byte for byte the one
// given. A source that keeps its bundle hands out the same slice, which
// compares at once.
func (v *verifiedCertificates) unchanged(bundles [][]byte) bool {
	for i, ca := range v.cas {
		if !bytes.Equal(ca.CurrentCABundleContent(), bundles[i]) {
			return false
		}
	}
	return true
}

// authenticateChain answers from the cache of verified chains, or verifies.
func (v *verifiedCertificates) authenticateChain(req *http.Request, bundles [][]byte) (*authenticator.Response, bool, error) {
	key := keyFor(bundles, req.TLS.PeerCertificates)
	if resp, ok := v.cache.Get(key); ok {
		return resp.(*authenticator.Response), true, nil
	}
	resp, ok, err := v.verify.AuthenticateRequest(req)
	if ok && err == nil {
		if ttl := v.lifetime(bundles, req.TLS.PeerCertificates); ttl > 0 {
			v.cache.Add(key, resp, ttl)
		}
	}
	return resp, ok, err
}

// rememberConn keeps a connection's answer for as long as a verified chain
// is kept. A refusal is kept only once every certificate in the chain and
// the bundle is valid by date: before that, time alone could change it.
func (v *verifiedCertificates) rememberConn(state *tls.ConnectionState, e *connEntry) {
	accepted := e.ok && e.err == nil
	if !accepted && !v.pastNotBefore(e.bundles, state.PeerCertificates) {
		return
	}
	if ttl := v.lifetime(e.bundles, state.PeerCertificates); ttl > 0 {
		v.conns.Add(state, e, ttl)
	}
}

// pastNotBefore reports whether every certificate in chain and bundle has
// reached its NotBefore.
func (v *verifiedCertificates) pastNotBefore(bundles [][]byte, chain []*x509.Certificate) bool {
	cas, err := parseBundles(bundles)
	if err != nil {
		return false
	}
	now := v.now()
	for _, c := range append(cas, chain...) {
		if now.Before(c.NotBefore) {
			return false
		}
	}
	return true
}

func keyFor(bundles [][]byte, chain []*x509.Certificate) certCacheKey {
	h := sha256.New()
	writeLenPrefixed(h, []byte{byte(len(bundles))})
	for _, b := range bundles {
		writeLenPrefixed(h, b)
	}
	for _, c := range chain {
		writeLenPrefixed(h, c.Raw)
	}
	var k certCacheKey
	copy(k[:], h.Sum(nil))
	return k
}

func writeLenPrefixed(h interface{ Write([]byte) (int, error) }, b []byte) {
	n := len(b)
	_, _ = h.Write([]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
	_, _ = h.Write(b)
}

// lifetime is how long a verification may be reused: the TTL, cut short by
// the first expiry among the presented certificates and the CAs.
func (v *verifiedCertificates) lifetime(bundles [][]byte, chain []*x509.Certificate) time.Duration {
	now := v.now()
	until := now.Add(v.ttl)
	for _, c := range chain {
		if c.NotAfter.Before(until) {
			until = c.NotAfter
		}
	}
	cas, err := parseBundles(bundles)
	if err != nil {
		return 0
	}
	for _, c := range cas {
		if c.NotAfter.Before(until) {
			until = c.NotAfter
		}
	}
	return until.Sub(now)
}

// parseBundles parses every certificate of every non-empty bundle; a source
// that has not loaded yet has an empty one.
func parseBundles(bundles [][]byte) ([]*x509.Certificate, error) {
	var all []*x509.Certificate
	for _, b := range bundles {
		if len(b) == 0 {
			continue
		}
		cas, err := certutil.ParseCertsPEM(b)
		if err != nil {
			return nil, err
		}
		all = append(all, cas...)
	}
	return all, nil
}
