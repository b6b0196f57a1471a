package options

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"

	"github.com/kip-proxy/kip/internal/revocation"
)

// DefaultRevocationConfigMap is where the Helm chart keeps the list.
const DefaultRevocationConfigMap = "kip/kip-revocations"

// DefaultSignerCASecret is where the Helm chart keeps kip's signer CA.
const DefaultSignerCASecret = "kip/kip-signer-ca"

// RevokeSignerCA says which signer CA Secret to replace, and how long to
// wait for the replica holding its Lease to do it.
type RevokeSignerCA struct {
	Secret  string
	Timeout time.Duration
}

// AddFlags registers the flags on fs.
func (o *RevokeSignerCA) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Secret, "secret", DefaultSignerCASecret, "namespace/name of the signer CA Secret, as kip serve's --signer-ca-secret.")
	fs.DurationVar(&o.Timeout, "timeout", 2*time.Minute, "How long to wait for a kip replica to replace the CA.")
}

// Target is the Secret's namespace and name.
func (o *RevokeSignerCA) Target() (namespace, name string, err error) {
	if o.Timeout <= 0 {
		return "", "", fmt.Errorf("--timeout must be positive, not %s", o.Timeout)
	}
	namespace, name, err = SplitNamespacedName(o.Secret)
	if err != nil {
		return "", "", fmt.Errorf("--secret: %w", err)
	}
	return namespace, name, nil
}

// Revoke is what every `kip revoke` command shares: the cluster that
// holds the list, through a kubeconfig, and the list's ConfigMap.
type Revoke struct {
	ClientConfig
	ConfigMap string
}

// AddFlags registers the shared flags on fs.
func (o *Revoke) AddFlags(fs *pflag.FlagSet) {
	o.ClientConfig.AddFlags(fs, "the cluster that holds kip's revocation list (kip's home cluster, directly or through kip)")
	fs.StringVar(&o.ConfigMap, "configmap", DefaultRevocationConfigMap, "namespace/name of the revocation list, as kip serve's --revocation-configmap.")
}

// Source is the list's ConfigMap, reached with the kubeconfig.
func (o *Revoke) Source() (revocation.Source, error) {
	ns, name, err := SplitNamespacedName(o.ConfigMap)
	if err != nil {
		return revocation.Source{}, fmt.Errorf("--configmap: %w", err)
	}
	client, err := o.Client()
	if err != nil {
		return revocation.Source{}, err
	}
	return revocation.Source{Client: client, Namespace: ns, Name: name}, nil
}

// Client reaches kip's home cluster with the kubeconfig.
func (o *Revoke) Client() (kubernetes.Interface, error) {
	cfg, err := o.RESTConfig()
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// RevokeEntry says which credentials one entry covers, and for how long.
type RevokeEntry struct {
	// Before is an RFC 3339 time; empty means now.
	Before string
	// For makes a lock: credentials issued in the next For are refused too.
	For time.Duration
	// Keep is how long the entry applies after its time: the longest a
	// covered credential can stay valid.
	Keep   time.Duration
	Reason string
}

// AddFlags registers the entry's flags on fs.
func (o *RevokeEntry) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Before, "before", o.Before, "Refuse credentials issued before this RFC 3339 time (default: now).")
	fs.DurationVar(&o.For, "for", o.For, "Lock the subject out: also refuse credentials issued during this long from now, fresh sign-ins included.")
	fs.DurationVar(&o.Keep, "keep", 24*time.Hour, "How long the entry applies after its time: the longest any covered credential stays valid (kip's certificates live at most 24h; raise it for ID or webhook tokens that live longer).")
	fs.StringVar(&o.Reason, "reason", o.Reason, "Why, for whoever reads the list.")
}

// Entry is the entry for kind and value, as of now.
func (o *RevokeEntry) Entry(kind revocation.Kind, value string, now time.Time) (revocation.Entry, error) {
	before := now
	switch {
	case o.Before != "" && o.For != 0:
		return revocation.Entry{}, errors.New("--before and --for both set the entry's time: give one")
	case o.Before != "":
		t, err := time.Parse(time.RFC3339, o.Before)
		if err != nil {
			return revocation.Entry{}, fmt.Errorf("--before: %w", err)
		}
		before = t
	case o.For < 0:
		return revocation.Entry{}, fmt.Errorf("--for must not be negative, not %s", o.For)
	default:
		before = now.Add(o.For)
	}
	if o.Keep <= 0 {
		return revocation.Entry{}, fmt.Errorf("--keep must be positive, not %s", o.Keep)
	}
	e := revocation.Entry{Kind: kind, Value: value, Before: before.UTC(), Expires: before.Add(o.Keep).UTC(),
		Reason: o.Reason, Created: now.UTC()}
	if !e.InForce(now) {
		return revocation.Entry{}, fmt.Errorf("the entry would have expired at %s, before it is written: every credential it covers has expired; raise --keep if some live longer", e.Expires.Format(time.RFC3339))
	}
	return e, e.Validate()
}
