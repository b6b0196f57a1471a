package hydra

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"
)

// Default token lifespans: short enough that a test or a `kip dev` session
// meets a refresh, long enough that a slow test does not trip over expiry.
const (
	defaultAccessTokenLifespan  = 15 * time.Minute
	defaultIDTokenLifespan      = 15 * time.Minute
	defaultRefreshTokenLifespan = 24 * time.Hour
	// The login and consent challenges and the authorization code only
	// bridge a few redirects.
	authCodeLifespan     = 5 * time.Minute
	loginConsentLifespan = 15 * time.Minute
)

// serveConfig is what the configuration file needs to know about where
// Hydra listens and what it serves with.
type serveConfig struct {
	publicPort, adminPort int
	certFile, keyFile     string
	systemSecret          string
}

// config builds Hydra's configuration file. JSON is one of the formats
// Hydra reads, and needs nothing beyond encoding/json to write.
func config(opts Options, s serveConfig) map[string]any {
	return map[string]any{
		// An in-memory SQLite database: nothing to migrate, nothing left
		// behind, and every start is a clean provider.
		"dsn":     "memory",
		"secrets": map[string]any{"system": []string{s.systemSecret}},
		"serve": map[string]any{
			"public": map[string]any{"host": "127.0.0.1", "port": s.publicPort},
			"admin":  map[string]any{"host": "127.0.0.1", "port": s.adminPort},
			// Hydra serves HTTPS only when enabled is set, whatever the
			// certificate paths say; it then applies to both listeners.
			"tls": map[string]any{
				"enabled": true,
				"cert":    map[string]any{"path": s.certFile},
				"key":     map[string]any{"path": s.keyFile},
			},
			// --dev drops the Secure flag, and browsers refuse
			// SameSite=None cookies without it, which would break the
			// CSRF check of a browser sign-in. Lax is all a redirect flow
			// needs.
			"cookies": map[string]any{"same_site_mode": "Lax", "secure": true},
		},
		"urls": urls(opts, s.publicPort),
		"ttl": map[string]any{
			"access_token":          orDefault(opts.AccessTokenLifespan, defaultAccessTokenLifespan).String(),
			"id_token":              orDefault(opts.IDTokenLifespan, defaultIDTokenLifespan).String(),
			"refresh_token":         orDefault(opts.RefreshTokenLifespan, defaultRefreshTokenLifespan).String(),
			"auth_code":             authCodeLifespan.String(),
			"login_consent_request": loginConsentLifespan.String(),
		},
		"oauth2": map[string]any{
			// kip's clients are public (a CLI cannot keep a secret), and
			// without PKCE a public client's code could be redeemed by
			// whoever intercepted it.
			"pkce": map[string]any{"enforced_for_public_clients": true},
			// This provider exists to be debugged against.
			"expose_internal_errors": true,
		},
		"log": map[string]any{"level": "info", "leak_sensitive_values": true},
	}
}

// urls names the issuer and the login and consent app. Left out, the app's
// pages default to Hydra's own fallback pages, which show an error to a
// browser; SignIn never visits them, since it answers the challenges itself.
func urls(opts Options, publicPort int) map[string]any {
	u := map[string]any{"self": map[string]any{"issuer": issuerURL(publicPort)}}
	if opts.LoginURL != "" {
		u["login"] = opts.LoginURL
	}
	if opts.ConsentURL != "" {
		u["consent"] = opts.ConsentURL
	}
	return u
}

// writeConfig writes the configuration to path, readable by its owner only:
// it holds the system secret.
func writeConfig(path string, cfg map[string]any) error {
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("writing Hydra's configuration: %w", err)
	}
	return nil
}

func issuerURL(publicPort int) string { return "https://127.0.0.1:" + strconv.Itoa(publicPort) }

func adminURL(adminPort int) string { return "https://127.0.0.1:" + strconv.Itoa(adminPort) }

// newSystemSecret returns 64 hex characters. Hydra derives its encryption
// and HMAC keys from this secret and wants at least 32 characters of it.
func newSystemSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating Hydra's system secret: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
