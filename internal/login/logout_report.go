package login

import (
	"crypto/x509"
	"encoding/pem"
	"strings"
	"time"

	"github.com/kip-proxy/kip/internal/login/cache"
	"github.com/kip-proxy/kip/internal/login/oidcflow"
)

// describeEntry names a cached login for the user.
func describeEntry(k cache.Key) string {
	var s string
	switch k.Kind {
	case "oidc":
		s = k.Issuer + " (client " + k.ClientID + ")"
	default:
		s = "a static token"
	}
	if k.KipServer != "" {
		s += " at kip " + k.KipServer
	}
	return s
}

// held lists what a removed entry held, or why it was not usable.
func held(e cache.Entry, loadErr error) string {
	if loadErr != nil {
		return "an entry kip would not use (" + loadErr.Error() + ")"
	}
	var parts []string
	if e.IDToken != "" {
		parts = append(parts, "ID token")
	}
	if e.RefreshToken != "" {
		parts = append(parts, "refresh token")
	}
	if e.Certificate != "" || e.PrivateKey != "" {
		parts = append(parts, "kip certificate and key")
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return joinAnd(parts)
}

// idTokenExpiry reads a cached ID token's expiry, without its signature:
// it only tells the user how long a copy would last.
func idTokenExpiry(k cache.Key, raw string) (time.Time, bool) {
	if raw == "" {
		return time.Time{}, false
	}
	exp, err := oidcflow.CachedIDTokenExpiry(raw, k.Issuer, k.ClientID)
	return exp, err == nil
}

func certificateExpiry(certPEM string) (time.Time, bool) {
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil {
		return time.Time{}, false
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return time.Time{}, false
	}
	return c.NotAfter, true
}

// joinAnd joins "a", "b", "c" as "a, b and c".
func joinAnd(parts []string) string {
	if len(parts) < 2 {
		return strings.Join(parts, "")
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}
