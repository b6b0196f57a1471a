package revocation

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"
)

// CertificateIssued is when a client certificate was issued, as far as
// its NotBefore tells: issuers, kip's signer among them, backdate
// NotBefore by backdate to allow for clocks that run behind.
func CertificateIssued(leaf *x509.Certificate, backdate time.Duration) time.Time {
	return leaf.NotBefore.Add(backdate)
}

// TokenIssued is a JWT's iat claim, or zero when the token is not a JWT
// or has none (a webhook token). The token has already been verified by
// then; this reads only its payload.
func TokenIssued(token string) time.Time {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}
	}
	var claims struct {
		IssuedAt json.Number `json:"iat"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return time.Time{}
	}
	f, err := claims.IssuedAt.Float64()
	if err != nil || f <= 0 {
		return time.Time{}
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9))
}
