package options

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/kip-proxy/kip/internal/authlimit"
	"github.com/kip-proxy/kip/internal/server"
	configv1alpha1 "github.com/kip-proxy/kip/pkg/apis/config/v1alpha1"
)

// FailedAuthentication bounds what bearer tokens kip cannot verify may
// cost it and its upstream.
type FailedAuthentication struct {
	Burst                int
	RefillInterval       time.Duration
	RefusedTokenCacheTTL time.Duration
	MaxOutboundReviews   int
}

// NewFailedAuthentication returns the defaults.
func NewFailedAuthentication() FailedAuthentication {
	return FailedAuthentication{
		Burst:                authlimit.DefaultFailureBurst,
		RefillInterval:       authlimit.DefaultFailureInterval,
		RefusedTokenCacheTTL: authlimit.DefaultRefusedTokenTTL,
		MaxOutboundReviews:   authlimit.DefaultMaxOutboundReviews,
	}
}

// AddFlags registers the flags on fs.
func (o *FailedAuthentication) AddFlags(fs *pflag.FlagSet) {
	fs.IntVar(&o.Burst, "authentication-failure-burst", o.Burst,
		"Failed bearer-token authentications a client address may have in a row before it is answered 429 without any check; IPv6 addresses count by /64. Every client behind one NAT or load balancer that hides addresses shares one budget. 0 turns the budget off.")
	fs.DurationVar(&o.RefillInterval, "authentication-failure-refill-interval", o.RefillInterval,
		"Time for an address to earn back one failed authentication.")
	fs.DurationVar(&o.RefusedTokenCacheTTL, "refused-token-cache-ttl", o.RefusedTokenCacheTTL,
		"How long a refused bearer token is refused again without asking the webhook or the upstream; 0 turns this off.")
	fs.IntVar(&o.MaxOutboundReviews, "max-outbound-authentication-reviews", o.MaxOutboundReviews,
		"Most TokenReviews (to the token webhook and the upstream, together) in flight at once to authenticate callers; a caller waits up to 1s for a slot, then gets 429. 0 means no limit.")
}

// Validate reports every invalid option.
func (o *FailedAuthentication) Validate() []error {
	var errs []error
	if o.Burst < 0 {
		errs = append(errs, fmt.Errorf("--authentication-failure-burst must not be negative, not %d; 0 turns the budget off", o.Burst))
	}
	if o.Burst > 0 && o.RefillInterval <= 0 {
		errs = append(errs, fmt.Errorf("--authentication-failure-refill-interval must be positive, not %s, or an address would never earn a failure back", o.RefillInterval))
	}
	if o.RefusedTokenCacheTTL < 0 || o.RefusedTokenCacheTTL > time.Minute {
		errs = append(errs, fmt.Errorf("--refused-token-cache-ttl must be between 0 and 1m, not %s: a token just made valid stays refused that long", o.RefusedTokenCacheTTL))
	}
	if o.MaxOutboundReviews < 0 {
		errs = append(errs, fmt.Errorf("--max-outbound-authentication-reviews must not be negative, not %d; 0 means no limit", o.MaxOutboundReviews))
	}
	return errs
}

// ApplyTo sets the server configuration from the options.
func (o *FailedAuthentication) ApplyTo(cfg *server.Config) {
	cfg.Credentials.FailedAuthentication = authlimit.Config{
		FailureBurst:       o.Burst,
		FailureInterval:    o.RefillInterval,
		RefusedTokenTTL:    o.RefusedTokenCacheTTL,
		MaxOutboundReviews: o.MaxOutboundReviews,
	}
}

// fields maps the file's settings to the flags.
func (o *FailedAuthentication) fields(f *configv1alpha1.FailedAuthenticationLimits) []configField {
	return []configField{
		{"authentication-failure-burst", func() { o.Burst = int(*f.Burst) }},
		{"authentication-failure-refill-interval", func() { o.RefillInterval = f.RefillInterval.Duration }},
		{"refused-token-cache-ttl", func() { o.RefusedTokenCacheTTL = f.RefusedTokenCacheTTL.Duration }},
		{"max-outbound-authentication-reviews", func() { o.MaxOutboundReviews = int(*f.MaxOutboundReviews) }},
	}
}
