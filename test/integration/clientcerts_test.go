package integration

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/http"
	"testing"
	"time"

	"github.com/kip-proxy/kip/internal/rig/harness"
)

// Rule 1 of docs/security.md, for client certificates: only a chain that a
// trusted CA vouches for, as kube-apiserver would verify it, authenticates,
// and the certificate cache never lets one chain stand for another.

// chainLink is a certificate with its key: a CA that signs the next link of
// a test chain, or a leaf that a client presents.
type chainLink struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// clusterClientCA is the cluster's client CA, which kip trusts.
func clusterClientCA() chainLink {
	return chainLink{cert: stack.Cluster.ClientCA.Cert, key: stack.Cluster.ClientCA.Key}
}

// signLink issues a certificate from tmpl, signed by parent (self-signed when
// parent is nil), for key (a fresh one when nil).
func signLink(t *testing.T, parent *chainLink, tmpl *x509.Certificate, key crypto.Signer) chainLink {
	t.Helper()
	if key == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		key = k
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = serial
	parentCert, parentKey := tmpl, key
	if parent != nil {
		parentCert, parentKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return chainLink{cert: c, key: key}
}

// caTemplate is an intermediate CA valid from a minute ago for an hour;
// change changes it before it is signed.
func caTemplate(change func(*x509.Certificate)) *x509.Certificate {
	now := time.Now()
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: harness.UniqueName("adversarial-intermediate")},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	if change != nil {
		change(tmpl)
	}
	return tmpl
}

// leafTemplate is a client certificate for cn in groups.
func leafTemplate(cn string, groups []string, change func(*x509.Certificate)) *x509.Certificate {
	now := time.Now()
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn, Organization: groups},
		NotBefore:   now.Add(-time.Minute),
		NotAfter:    now.Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if change != nil {
		change(tmpl)
	}
	return tmpl
}

// presentChain is what a client sends in its TLS Certificate message: leaf
// first, then chain as given.
func presentChain(leaf chainLink, chain ...chainLink) *tls.Certificate {
	c := &tls.Certificate{PrivateKey: leaf.key, Leaf: leaf.cert, Certificate: [][]byte{leaf.cert.Raw}}
	for _, link := range chain {
		c.Certificate = append(c.Certificate, link.cert.Raw)
	}
	return c
}

// TestAdversarialClientCertificateChains presents certificate chains built
// against the cluster's client CA, which kip trusts. A chain through an
// intermediate the client sends is accepted when, and only when, it
// verifies up to that CA: every link a CA, allowed to sign, within its dates,
// path length and key usages, and the leaf a client certificate with a
// name. Every other chain gets a 401 Status and no identity at all, though
// each leaf claims system:masters. kube-apiserver, asked directly with the
// same chain, must reach the same verdict: kip is neither weaker nor
// stricter than the upstream.
func TestAdversarialClientCertificateChains(t *testing.T) {
	const group = "adversarial-chains"
	masters := []string{"system:masters"}
	root := clusterClientCA()
	now := time.Now()
	good := signLink(t, &root, caTemplate(nil), nil)
	good2 := signLink(t, &good, caTemplate(nil), nil)
	strangerRoot := signLink(t, nil, caTemplate(nil), nil)
	stranger := signLink(t, &strangerRoot, caTemplate(nil), nil)
	impostor := signLink(t, nil, caTemplate(func(c *x509.Certificate) { c.Subject = root.cert.Subject }), nil)
	notCA := signLink(t, &root, caTemplate(func(c *x509.Certificate) { c.IsCA = false; c.KeyUsage = x509.KeyUsageDigitalSignature }), nil)
	clientAsIssuer := signLink(t, &root, leafTemplate(harness.UniqueName("adv-client"), nil, nil), nil)
	noCertSign := signLink(t, &root, caTemplate(func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageDigitalSignature }), nil)
	serverOnlyCA := signLink(t, &root, caTemplate(func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} }), nil)
	expiredCA := signLink(t, &root, caTemplate(func(c *x509.Certificate) { c.NotBefore, c.NotAfter = now.Add(-48*time.Hour), now.Add(-24*time.Hour) }), nil)
	futureCA := signLink(t, &root, caTemplate(func(c *x509.Certificate) { c.NotBefore, c.NotAfter = now.Add(time.Hour), now.Add(2*time.Hour) }), nil)
	pathLenZero := signLink(t, &root, caTemplate(func(c *x509.Certificate) { c.MaxPathLen, c.MaxPathLenZero = 0, true }), nil)
	belowPathLenZero := signLink(t, &pathLenZero, caTemplate(nil), nil)

	leaf := func(parent chainLink, groups []string, change func(*x509.Certificate)) (chainLink, string) {
		cn := harness.UniqueName("adv-chain")
		return signLink(t, &parent, leafTemplate(cn, groups, change), nil), cn
	}
	type chainCase struct {
		name string
		cert *tls.Certificate
		user string // who the request runs as; empty: refused with 401
	}
	var cases []chainCase
	accept := func(name string, parent chainLink, chain ...chainLink) {
		l, cn := leaf(parent, []string{group}, nil)
		cases = append(cases, chainCase{name: name, cert: presentChain(l, chain...), user: cn})
	}
	refuse := func(name string, parent chainLink, change func(*x509.Certificate), chain ...chainLink) {
		l, _ := leaf(parent, masters, change)
		cases = append(cases, chainCase{name: name, cert: presentChain(l, chain...)})
	}
	serverAuth := func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} }
	noName := func(c *x509.Certificate) { c.Subject.CommonName = "" }

	accept("leaf from the client CA, no intermediate", root)
	accept("intermediate sent by the client, chaining to the client CA", good, good)
	accept("two intermediates sent, chaining to the client CA", good2, good2, good)
	accept("two intermediates sent in reverse order", good2, good, good2)
	accept("the client CA itself sent after the intermediate", good, good, root)
	refuse("intermediate from a CA kip does not trust", stranger, nil, stranger)
	refuse("intermediate and its untrusted root", stranger, nil, stranger, strangerRoot)
	refuse("intermediate not sent", good, nil)
	refuse("CA with the client CA's name but another key", impostor, nil, impostor)
	refuse("issuer whose basic constraints say it is no CA", notCA, nil, notCA)
	refuse("issuer is an ordinary client certificate, no basic constraints", clientAsIssuer, nil, clientAsIssuer)
	refuse("CA issuer without keyCertSign", noCertSign, nil, noCertSign)
	refuse("intermediate limited to server auth", serverOnlyCA, nil, serverOnlyCA)
	refuse("leaf for server auth only under a good intermediate", good, serverAuth, good)
	refuse("leaf without a common name", root, noName)
	refuse("leaf without a common name under a good intermediate", good, noName, good)
	refuse("expired intermediate", expiredCA, nil, expiredCA)
	refuse("intermediate not yet valid", futureCA, nil, futureCA)
	refuse("path length exceeded", belowPathLenZero, nil, belowPathLenZero, pathLenZero)

	for _, proto := range rawProtos {
		t.Run(proto.String(), func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					res := rawDo(t, rawClient(t, proto, tc.cert), proto, selfSubjectReview)
					if direct := directRaw(t, tc.cert, selfSubjectReview).code; direct != res.code {
						t.Errorf("kip answered %d, kube-apiserver directly %d", res.code, direct)
					}
					if tc.user != "" {
						if err := checkServedAs(res, tc.user); err != nil {
							t.Fatal(err)
						}
						return
					}
					st := mustRawStatus(t, res, http.StatusUnauthorized)
					if st.Message != "Unauthorized" {
						t.Errorf("the 401 says %q, want kube-apiserver's plain \"Unauthorized\"", st.Message)
					}
				})
			}
		})
	}
}

// TestAdversarialCertificateCacheKeepsChainsApart presents one leaf with
// different chains in turn. kip caches a verified chain for up to a
// minute; the cache must be keyed by the whole chain, so that a leaf once
// accepted through a good intermediate is not accepted again through an
// expired or untrusted twin of it (same name and key), or with no
// intermediate at all.
func TestAdversarialCertificateCacheKeepsChainsApart(t *testing.T) {
	root := clusterClientCA()
	strangerRoot := signLink(t, nil, caTemplate(nil), nil)
	now := time.Now()
	good := signLink(t, &root, caTemplate(nil), nil)
	twin := func(parent *chainLink, change func(*x509.Certificate)) chainLink {
		tmpl := caTemplate(change)
		tmpl.Subject = good.cert.Subject
		return signLink(t, parent, tmpl, good.key)
	}
	expiredTwin := twin(&root, func(c *x509.Certificate) { c.NotBefore, c.NotAfter = now.Add(-48*time.Hour), now.Add(-24*time.Hour) })
	strangerTwin := twin(&strangerRoot, nil)
	cn := harness.UniqueName("adv-cache")
	leaf := signLink(t, &good, leafTemplate(cn, []string{"adversarial-cache"}, nil), nil)

	steps := []struct {
		name  string
		chain []chainLink
		ok    bool
	}{
		{"good intermediate", []chainLink{good}, true},
		{"expired twin of the intermediate", []chainLink{expiredTwin}, false},
		{"no intermediate", nil, false},
		{"twin of the intermediate from an untrusted CA", []chainLink{strangerTwin}, false},
		{"good intermediate again", []chainLink{good}, true},
	}
	for _, proto := range rawProtos {
		t.Run(proto.String(), func(t *testing.T) {
			for _, step := range steps {
				t.Run(step.name, func(t *testing.T) {
					// A client per step: each step is a new TLS handshake.
					res := rawDo(t, rawClient(t, proto, presentChain(leaf, step.chain...)), proto, selfSubjectReview)
					if step.ok {
						if err := checkServedAs(res, cn); err != nil {
							t.Fatal(err)
						}
						return
					}
					mustRawStatus(t, res, http.StatusUnauthorized)
				})
			}
		})
	}
}
