package authn

import (
	"crypto/sha256"
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
type verifiedCertificates struct {
	verify authenticator.Request
	cas    dynamiccertificates.CAContentProvider
	cache  *cache.LRUExpireCache
	ttl    time.Duration
	now    func() time.Time
}

// certCacheKey is a digest of the CA bundle followed by each presented
// certificate, so that no two different inputs share a key.
type certCacheKey [sha256.Size]byte

func newVerifiedCertificates(verify authenticator.Request, cas dynamiccertificates.CAContentProvider, ttl time.Duration) *verifiedCertificates {
	return &verifiedCertificates{verify: verify, cas: cas, cache: cache.NewLRUExpireCache(4096), ttl: ttl, now: time.Now}
}

func (v *verifiedCertificates) AuthenticateRequest(req *http.Request) (*authenticator.Response, bool, error) {
	if req.TLS == nil || len(req.TLS.PeerCertificates) == 0 {
		return v.verify.AuthenticateRequest(req)
	}
	bundle := v.cas.CurrentCABundleContent()
	key := keyFor(bundle, req.TLS.PeerCertificates)
	if resp, ok := v.cache.Get(key); ok {
		return resp.(*authenticator.Response), true, nil
	}
	resp, ok, err := v.verify.AuthenticateRequest(req)
	if ok && err == nil {
		if ttl := v.lifetime(bundle, req.TLS.PeerCertificates); ttl > 0 {
			v.cache.Add(key, resp, ttl)
		}
	}
	return resp, ok, err
}

func keyFor(bundle []byte, chain []*x509.Certificate) certCacheKey {
	h := sha256.New()
	writeLenPrefixed(h, bundle)
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
func (v *verifiedCertificates) lifetime(bundle []byte, chain []*x509.Certificate) time.Duration {
	now := v.now()
	until := now.Add(v.ttl)
	for _, c := range chain {
		if c.NotAfter.Before(until) {
			until = c.NotAfter
		}
	}
	cas, err := certutil.ParseCertsPEM(bundle)
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
