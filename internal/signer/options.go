package signer

import (
	"fmt"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/utils/clock"
)

const (
	defaultMaxCertificateTTL = 24 * time.Hour
	defaultCAValidity        = 365 * 24 * time.Hour
	defaultCheckInterval     = time.Minute

	// DefaultLeaseName is the Lease that replicas sharing a signer CA
	// Secret hold to rotate it; deploy/rbac.yaml grants this name.
	DefaultLeaseName = "kip-signer-ca"
	// The Kubernetes controllers' own defaults: a replica that dies is
	// replaced as the rotating one within about 17 seconds, and a live one
	// rides out a few seconds of API server trouble.
	defaultLeaseDuration = 15 * time.Second
	defaultRenewDeadline = 10 * time.Second
	defaultRetryPeriod   = 2 * time.Second
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
	// LeaderElection chooses the one replica that rotates a Secret-backed
	// CA. Unused for a CA from files.
	LeaderElection LeaderElection
}

// LeaderElection is how replicas sharing a signer CA Secret choose, through
// a Lease in the Secret's namespace, the one that rotates it. Every replica
// follows the Secret whoever holds the Lease. The zero value is usable.
type LeaderElection struct {
	// LeaseName names the Lease. Default DefaultLeaseName.
	LeaseName string
	// Identity is this replica's holderIdentity in the Lease, unique among
	// replicas. Default: the host name (in a cluster, the pod name) and a
	// random suffix.
	Identity string
	// LeaseDuration is how long the others wait before taking over from a
	// leader that stopped renewing. Default 15s.
	LeaseDuration time.Duration
	// RenewDeadline is how long the leader keeps trying to renew before it
	// stops rotating. Default 10s; shorter than LeaseDuration, so the
	// leader stops before anyone else may start.
	RenewDeadline time.Duration
	// RetryPeriod is the wait between tries to acquire or renew. Default 2s.
	RetryPeriod time.Duration
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
	le, err := o.LeaderElection.complete()
	if err != nil {
		return o, err
	}
	o.LeaderElection = le
	return o, nil
}

// complete fills in the election's defaults and refuses what client-go's
// leader election would refuse, so a bad value fails at start.
func (l LeaderElection) complete() (LeaderElection, error) {
	if l.LeaseName == "" {
		l.LeaseName = DefaultLeaseName
	}
	if l.Identity == "" {
		l.Identity = DefaultIdentity()
	}
	for _, d := range []struct {
		value *time.Duration
		def   time.Duration
	}{
		{&l.LeaseDuration, defaultLeaseDuration},
		{&l.RenewDeadline, defaultRenewDeadline},
		{&l.RetryPeriod, defaultRetryPeriod},
	} {
		if *d.value == 0 {
			*d.value = d.def
		}
	}
	return l, l.Validate()
}

// Validate reports the first value client-go's leader election would
// refuse, or one kip cannot use.
func (l LeaderElection) Validate() error {
	if errs := validation.IsDNS1123Subdomain(l.LeaseName); l.LeaseName != "" && len(errs) > 0 {
		return fmt.Errorf("signer CA Lease name %q: %v", l.LeaseName, errs)
	}
	switch {
	case l.RetryPeriod <= 0:
		return fmt.Errorf("signer CA Lease retry period must be positive, got %v", l.RetryPeriod)
	case l.LeaseDuration < time.Second:
		// The Lease records its duration in whole seconds.
		return fmt.Errorf("signer CA Lease duration must be at least 1s, got %v", l.LeaseDuration)
	case l.RenewDeadline >= l.LeaseDuration:
		// Otherwise a leader could still be rotating when another takes over.
		return fmt.Errorf("signer CA Lease renew deadline (%v) must be shorter than its duration (%v)", l.RenewDeadline, l.LeaseDuration)
	case l.RenewDeadline <= time.Duration(leaderelection.JitterFactor*float64(l.RetryPeriod)):
		return fmt.Errorf("signer CA Lease renew deadline (%v) must be longer than %v times its retry period (%v)", l.RenewDeadline, leaderelection.JitterFactor, l.RetryPeriod)
	}
	return nil
}

// DefaultIdentity names this replica in the Lease: its host name, which is
// the pod name in a cluster, so an operator sees which pod rotates, and a
// random suffix, so two processes on one host never share an identity.
func DefaultIdentity() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "kip"
	}
	return host + "_" + rand.String(8)
}
