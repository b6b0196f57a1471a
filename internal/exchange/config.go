package exchange

import (
	"crypto"
	"errors"
	"fmt"
	"net/http"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/utils/clock"
)

// Defaults for the zero values of Config.
const (
	DefaultTTL             = 5 * time.Minute
	DefaultTokenTimeout    = 10 * time.Second
	DefaultFailureBurst    = 10
	DefaultFailureInterval = 6 * time.Second
	DefaultMaxClients      = 10000

	// MaxTTL bounds Config.TTL: the exchange hands out short-lived
	// credentials, and a certificate cannot be revoked.
	MaxTTL = 24 * time.Hour
)

// Issuer signs a client certificate for a user's public key. kip's signer
// CA is one.
type Issuer interface {
	Issue(u user.Info, pub crypto.PublicKey, ttl time.Duration) (certPEM []byte, notAfter time.Time, err error)
}

// Config is what the exchange needs. Zero durations and counts take the
// Default* values.
type Config struct {
	// Tokens verifies the token in the request: kip's own OIDC and webhook
	// authenticators, which already refuse reserved system: names.
	Tokens authenticator.Token
	// APIAudiences, when set, are the audiences a token must be valid for,
	// the same as kip's authentication filter asks, so a token is accepted
	// here exactly when it would be accepted as a bearer token.
	APIAudiences authenticator.Audiences
	// Issuer signs the certificates.
	Issuer Issuer
	// TTL is how long an issued certificate lives.
	TTL time.Duration
	// TokenTimeout bounds one token check, so a slow identity provider
	// cannot hold a request open for ever.
	TokenTimeout time.Duration

	// FailureBurst is how many failed token checks a client address may
	// make in a row before it is answered 429.
	FailureBurst int
	// FailureInterval is how long it takes an address to earn one more
	// failure back.
	FailureInterval time.Duration
	// MaxClients bounds the table of failing addresses.
	MaxClients int

	// Clock tells the time for the rate limit; a real clock when nil.
	Clock clock.PassiveClock

	// Outcomes counts certificates issued and exchanges refused. Nil counts
	// nothing, for tests that do not look at metrics.
	Outcomes Outcomes
}

// New returns the exchange handler. Wrap it with WithExchange to put it in
// front of authentication.
func New(c Config) (http.Handler, error) {
	c.setDefaults()
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("the credential exchange is misconfigured: %w", err)
	}
	h, err := newHandler(c)
	if err != nil {
		return nil, fmt.Errorf("building the credential exchange: %w", err)
	}
	return h, nil
}

func (c *Config) setDefaults() {
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.TokenTimeout == 0 {
		c.TokenTimeout = DefaultTokenTimeout
	}
	if c.FailureBurst == 0 {
		c.FailureBurst = DefaultFailureBurst
	}
	if c.FailureInterval == 0 {
		c.FailureInterval = DefaultFailureInterval
	}
	if c.MaxClients == 0 {
		c.MaxClients = DefaultMaxClients
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if c.Outcomes == nil {
		c.Outcomes = uncounted{}
	}
}

func (c *Config) validate() error {
	var errs []error
	if c.Tokens == nil {
		errs = append(errs, errors.New("a token authenticator is required"))
	}
	if c.Issuer == nil {
		errs = append(errs, errors.New("a certificate issuer is required"))
	}
	if c.TTL < 0 || c.TTL > MaxTTL {
		errs = append(errs, fmt.Errorf("the certificate TTL %v must be positive and at most %v", c.TTL, MaxTTL))
	}
	if c.TokenTimeout < 0 {
		errs = append(errs, fmt.Errorf("the token timeout %v must be positive", c.TokenTimeout))
	}
	if c.FailureBurst < 0 {
		errs = append(errs, fmt.Errorf("the failure burst %d must be positive", c.FailureBurst))
	}
	if c.FailureInterval < 0 {
		errs = append(errs, fmt.Errorf("the failure interval %v must be positive", c.FailureInterval))
	}
	if c.MaxClients < 0 {
		errs = append(errs, fmt.Errorf("the maximum number of rate-limited clients %d must be positive", c.MaxClients))
	}
	return errors.Join(errs...)
}
