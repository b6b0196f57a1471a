package metrics

import (
	"crypto/x509"

	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/component-base/metrics"
)

// Expiry names the certificates whose expiry kip reports. A nil source is
// not configured, and its gauge is absent.
type Expiry struct {
	// SignerCA is kip's signer; its bundle starts with the CA that signs.
	SignerCA dynamiccertificates.CAContentProvider
	// ClientCA is every CA trusted for a certificate's subject; the
	// earliest expiry among them is reported.
	ClientCA dynamiccertificates.CAContentProvider
	// Serving is the secure port's certificate.
	Serving dynamiccertificates.CertKeyContentProvider
}

// refreshExpiry sets the expiry gauges from e's sources.
func (r *Recorder) refreshExpiry(e Expiry) {
	if r == nil {
		return
	}
	var signer, client, serving []*x509.Certificate
	if e.SignerCA != nil {
		signer = parse(e.SignerCA.CurrentCABundleContent())
		if len(signer) > 1 {
			signer = signer[:1]
		}
	}
	if e.ClientCA != nil {
		client = parse(e.ClientCA.CurrentCABundleContent())
	}
	if e.Serving != nil {
		certPEM, _ := e.Serving.CurrentCertKeyContent()
		if serving = parse(certPEM); len(serving) > 1 {
			serving = serving[:1] // the leaf, not its chain
		}
	}
	setEarliest(r.signerCAExpiry, signer)
	setEarliest(r.clientCAExpiry, client)
	setEarliest(r.servingCertificateExpiry, serving)
}

func parse(pemBytes []byte) []*x509.Certificate {
	if len(pemBytes) == 0 {
		return nil
	}
	certs, err := certutil.ParseCertsPEM(pemBytes)
	if err != nil {
		return nil
	}
	return certs
}

// setEarliest sets g to the earliest expiry among certs, or removes it
// when there are none.
func setEarliest(g *metrics.GaugeVec, certs []*x509.Certificate) {
	if len(certs) == 0 {
		g.Reset()
		return
	}
	earliest := certs[0].NotAfter
	for _, c := range certs[1:] {
		if c.NotAfter.Before(earliest) {
			earliest = c.NotAfter
		}
	}
	g.WithLabelValues().Set(float64(earliest.Unix()))
}
