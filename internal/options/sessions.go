package options

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/kip-proxy/kip/internal/sessions"
	"github.com/spf13/pflag"
)

// Sessions is what every `kip sessions` command shares: where the
// recordings are read from, kip (through a kubeconfig) or a recording
// directory, and which namespace.
type Sessions struct {
	ClientConfig
	Namespace     string
	AllNamespaces bool
	// Dir, when set, is a recording directory read directly, without kip.
	Dir string
}

// AddFlags registers the shared flags on fs.
func (o *Sessions) AddFlags(fs *pflag.FlagSet) {
	o.ClientConfig.AddFlags(fs, "kip")
	fs.StringVarP(&o.Namespace, "namespace", "n", o.Namespace, "Namespace of the sessions (default: the context's namespace; with --dir, every namespace).")
	fs.StringVar(&o.Dir, "dir", o.Dir, "Read this recording directory (kip serve's --recording-dir) directly instead of asking kip.")
}

// Validate reports every invalid shared option.
func (o *Sessions) Validate() error {
	var errs []error
	if o.AllNamespaces && o.Namespace != "" {
		errs = append(errs, errors.New("--all-namespaces and --namespace contradict each other: give one"))
	}
	if o.Dir != "" && (o.Kubeconfig != "" || o.Context != "") {
		errs = append(errs, errors.New("--dir reads recordings without kip, so --kubeconfig and --context have no effect: give one or the other"))
	}
	return errors.Join(errs...)
}

// RemoteNamespace is the namespace to ask kip about: --namespace, else
// the context's ("default" when it names none); "" with
// --all-namespaces.
func (o *Sessions) RemoteNamespace() (string, error) {
	if o.AllNamespaces {
		return "", nil
	}
	if o.Namespace != "" {
		return o.Namespace, nil
	}
	ns, _, err := o.loader().Namespace()
	if err != nil {
		return "", fmt.Errorf("reading the kubeconfig's namespace: %w", err)
	}
	return ns, nil
}

// SessionsList is the option set of `kip sessions list`.
type SessionsList struct {
	User  string
	Pod   string
	Since string
	Until string
	// Cluster selects a gateway's cluster in a recording directory; kip's
	// API answers for the cluster the kubeconfig's server names.
	Cluster string
	Limit   int
	Output  string
}

// AddFlags registers list's flags on fs; allNamespaces is the shared
// option -A sets.
func (o *SessionsList) AddFlags(fs *pflag.FlagSet, allNamespaces *bool) {
	fs.BoolVarP(allNamespaces, "all-namespaces", "A", *allNamespaces, "List the sessions of every namespace.")
	fs.StringVar(&o.User, "user", o.User, "Only the sessions of this user.")
	fs.StringVar(&o.Pod, "pod", o.Pod, "Only the sessions in this pod.")
	fs.StringVar(&o.Since, "since", o.Since, "Only the sessions started since then: a duration before now (2h, 30m) or an RFC 3339 time.")
	fs.StringVar(&o.Until, "until", o.Until, "Only the sessions started until then: a duration before now or an RFC 3339 time.")
	fs.StringVar(&o.Cluster, "cluster", o.Cluster, "With --dir, only the sessions of this cluster of a gateway. Through kip, the cluster is the one your kubeconfig's server names (https://kip/clusters/<name>).")
	fs.IntVar(&o.Limit, "limit", o.Limit, "List at most this many sessions, the newest (0: kip's cap).")
	fs.StringVarP(&o.Output, "output", "o", o.Output, "Output format: text (a table, the default) or json.")
}

// Validate reports every invalid list option; dir is the shared --dir.
func (o *SessionsList) Validate(dir string) error {
	var errs []error
	switch o.Output {
	case "", "text", "json":
	default:
		errs = append(errs, fmt.Errorf("--output must be text or json, not %q", o.Output))
	}
	if o.Limit < 0 {
		errs = append(errs, fmt.Errorf("--limit must be 0 or more, not %d", o.Limit))
	}
	now := time.Now()
	since, err := ParseSince(o.Since, now)
	if err != nil {
		errs = append(errs, err)
	}
	until, err := parseTimeBound("--until", o.Until, now)
	if err != nil {
		errs = append(errs, err)
	}
	if !since.IsZero() && !until.IsZero() && until.Before(since) {
		errs = append(errs, fmt.Errorf("--until %s is before --since %s: no session can match", o.Until, o.Since))
	}
	if o.Cluster != "" && dir == "" {
		errs = append(errs, errors.New("--cluster selects sessions in a recording directory (--dir); through kip, use a kubeconfig whose server names the cluster (https://kip/clusters/<name>)"))
	}
	return errors.Join(errs...)
}

// ParseSince reads --since: empty (no bound), a duration before now, or
// an RFC 3339 time.
func ParseSince(s string, now time.Time) (time.Time, error) {
	return parseTimeBound("--since", s, now)
}

// Filter is the selection the list options make, at now.
func (o *SessionsList) Filter(now time.Time) sessions.Filter {
	since, _ := ParseSince(o.Since, now)
	until, _ := parseTimeBound("--until", o.Until, now)
	return sessions.Filter{User: o.User, Pod: o.Pod, Cluster: o.Cluster, ExactCluster: o.Cluster != "",
		Since: since, Until: until, Limit: o.Limit}
}

// parseTimeBound reads a time flag: empty (no bound), a duration before
// now, or an RFC 3339 time.
func parseTimeBound(flag, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%s %s is in the future: give a positive duration, such as 2h", flag, s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q is neither a duration (2h, 30m) nor an RFC 3339 time (2026-12-06T14:02:00Z)", flag, s)
	}
	return t, nil
}

// SessionsPlay is the option set of `kip sessions play`.
type SessionsPlay struct {
	Speed   float64
	MaxIdle time.Duration
	Raw     bool
}

// NewSessionsPlay returns the defaults: real time, no cap on pauses.
func NewSessionsPlay() *SessionsPlay { return &SessionsPlay{Speed: 1} }

// AddFlags registers play's flags on fs.
func (o *SessionsPlay) AddFlags(fs *pflag.FlagSet) {
	fs.Float64Var(&o.Speed, "speed", o.Speed, "Replay this many times faster than real time (0.5 is half speed).")
	fs.DurationVar(&o.MaxIdle, "max-idle", o.MaxIdle, "Shorten every pause longer than this to this (e.g. 2s); 0 keeps pauses as they were.")
	fs.BoolVar(&o.Raw, "raw", o.Raw, "Write the recording itself (asciicast v2, as kip sealed it) to stdout instead of replaying it.")
}

// Validate reports every invalid play option.
func (o *SessionsPlay) Validate() error {
	var errs []error
	if !(o.Speed > 0) || math.IsInf(o.Speed, 0) {
		errs = append(errs, fmt.Errorf("--speed must be a positive number, not %v", o.Speed))
	}
	if o.MaxIdle < 0 {
		errs = append(errs, fmt.Errorf("--max-idle must be 0 or more, not %s", o.MaxIdle))
	}
	return errors.Join(errs...)
}

// SessionsVerify is the option set of `kip sessions verify`.
type SessionsVerify struct {
	// Key is the PEM public key to verify with.
	Key string
}

// AddFlags registers verify's flags on fs.
func (o *SessionsVerify) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Key, "key", o.Key, "PEM public key that must have sealed the recording. Required for a recording read from kip; for a file, the default is keys/<fingerprint>.pub of its recording directory.")
}
