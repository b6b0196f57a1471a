package options

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kip-proxy/kip/internal/server"
	"github.com/kip-proxy/kip/internal/signer"
)

// SignerLease is how replicas sharing --signer-ca-secret choose, through a
// Lease in the Secret's namespace, the one that rotates the signer CA.
type SignerLease struct {
	Name          string
	Identity      string
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
}

// NewSignerLease returns the defaults, those of Kubernetes' own
// controllers.
func NewSignerLease() *SignerLease {
	return &SignerLease{
		Name:          signer.DefaultLeaseName,
		LeaseDuration: 15 * time.Second,
		RenewDeadline: 10 * time.Second,
		RetryPeriod:   2 * time.Second,
	}
}

// AddFlags registers the Lease flags on fs.
func (o *SignerLease) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Name, "signer-ca-lease", o.Name,
		"Name of the Lease, in --signer-ca-secret's namespace, held by the one replica that rotates the signer CA. Every replica follows the Secret.")
	fs.StringVar(&o.Identity, "signer-ca-lease-identity", o.Identity,
		"This replica's name in the Lease's holderIdentity, unique among replicas. Default: the host name (the pod name in a cluster) and a random suffix.")
	fs.DurationVar(&o.LeaseDuration, "signer-ca-lease-duration", o.LeaseDuration,
		"How long the other replicas wait before taking over rotation from one that stopped renewing the Lease.")
	fs.DurationVar(&o.RenewDeadline, "signer-ca-lease-renew-deadline", o.RenewDeadline,
		"How long the rotating replica keeps trying to renew the Lease before it stops rotating; shorter than --signer-ca-lease-duration.")
	fs.DurationVar(&o.RetryPeriod, "signer-ca-lease-retry-period", o.RetryPeriod,
		"Wait between tries to acquire or renew the Lease.")
}

// Validate reports every invalid Lease option. secret is the value of
// --signer-ca-secret: without it there is no Lease, and changing its flags
// is a mistake worth saying.
func (o *SignerLease) Validate(secret string) []error {
	var errs []error
	if secret == "" {
		if *o != *NewSignerLease() {
			errs = append(errs, errors.New("--signer-ca-lease flags apply only with --signer-ca-secret: replicas coordinate rotation of a CA kept in a Secret"))
		}
		return errs
	}
	if msgs := validation.IsDNS1123Subdomain(o.Name); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("--signer-ca-lease %q: %s", o.Name, strings.Join(msgs, "; ")))
	}
	if o.Identity != strings.TrimSpace(o.Identity) {
		errs = append(errs, fmt.Errorf("--signer-ca-lease-identity %q has leading or trailing spaces", o.Identity))
	}
	switch {
	case o.LeaseDuration < time.Second:
		// The Lease records its duration in whole seconds.
		errs = append(errs, fmt.Errorf("--signer-ca-lease-duration must be at least 1s, not %s", o.LeaseDuration))
	case o.RenewDeadline <= 0 || o.RenewDeadline >= o.LeaseDuration:
		// Otherwise a leader could still be rotating when another one
		// takes over.
		errs = append(errs, fmt.Errorf("--signer-ca-lease-renew-deadline must be positive and shorter than --signer-ca-lease-duration (%s), not %s", o.LeaseDuration, o.RenewDeadline))
	}
	if o.RetryPeriod <= 0 {
		errs = append(errs, fmt.Errorf("--signer-ca-lease-retry-period must be positive, not %s", o.RetryPeriod))
	}
	if len(errs) == 0 {
		// client-go's own rules, such as a renew deadline longer than the
		// jittered retry period.
		if err := o.leaderElection().Validate(); err != nil {
			errs = append(errs, fmt.Errorf("--signer-ca-lease-renew-deadline and --signer-ca-lease-retry-period: %w", err))
		}
	}
	return errs
}

// ApplyTo hands the validated options to the server.
func (o *SignerLease) ApplyTo(cfg *server.CredentialsConfig) {
	cfg.SignerCALeaderElection = o.leaderElection()
}

func (o *SignerLease) leaderElection() signer.LeaderElection {
	return signer.LeaderElection{
		LeaseName:     o.Name,
		Identity:      o.Identity,
		LeaseDuration: o.LeaseDuration,
		RenewDeadline: o.RenewDeadline,
		RetryPeriod:   o.RetryPeriod,
	}
}
