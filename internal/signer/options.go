package signer

import (
	"fmt"
	"time"

	"k8s.io/utils/clock"
)

const (
	defaultMaxCertificateTTL = 24 * time.Hour
	defaultCAValidity        = 365 * 24 * time.Hour
	defaultCheckInterval     = time.Minute
)

// Options tune a CA. The zero value is usable.
type Options struct {
	// MaxCertificateTTL is the longest lifetime Issue grants, and so how
	// long a retired CA must stay trusted after a rotation. Default 24h.
	MaxCertificateTTL time.Duration
	// CAValidity is the lifetime of the CAs kip generates in Secret mode.
	// Default one year.
	CAValidity time.Duration
	// CheckInterval is how often Run looks for retired CAs whose window has
	// ended and, in Secret mode, whether the CA is due for rotation.
	// Default one minute.
	CheckInterval time.Duration
	// Clock tells the time; nil means the real clock. Tests pass a fake.
	Clock clock.Clock
}

// complete fills in defaults and refuses values that make no sense.
func (o Options) complete() (Options, error) {
	for _, d := range []struct {
		name  string
		value *time.Duration
		def   time.Duration
	}{
		{"MaxCertificateTTL", &o.MaxCertificateTTL, defaultMaxCertificateTTL},
		{"CAValidity", &o.CAValidity, defaultCAValidity},
		{"CheckInterval", &o.CheckInterval, defaultCheckInterval},
	} {
		if *d.value < 0 {
			return o, fmt.Errorf("signer option %s must not be negative, got %v", d.name, *d.value)
		}
		if *d.value == 0 {
			*d.value = d.def
		}
	}
	if o.MaxCertificateTTL >= o.CAValidity {
		return o, fmt.Errorf("signer option MaxCertificateTTL (%v) must be shorter than CAValidity (%v)", o.MaxCertificateTTL, o.CAValidity)
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	return o, nil
}
