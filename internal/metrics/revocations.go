package metrics

import "k8s.io/component-base/metrics"

// revocationKinds bound kip_revocation_refusals_total's kind label.
var revocationKinds = []string{"user", "uid", "group", "credential"}

// Revocations records the revocation list: the credentials it refused,
// by the kind of entry that refused them, and how many entries apply.
//
// Every method is a no-op on a nil *Revocations.
type Revocations struct {
	refusals *metrics.CounterVec
	entries  *metrics.Gauge
}

// Revocations is the recorder of the revocation list; nil for a nil
// Recorder, which records nothing.
func (r *Recorder) Revocations() *Revocations {
	if r == nil {
		return nil
	}
	return r.revocations
}

func (r *Recorder) declareRevocations() {
	rev := &Revocations{
		refusals: metrics.NewCounterVec(&metrics.CounterOpts{
			Namespace:      namespace,
			Name:           "revocation_refusals_total",
			Help:           "Credentials refused because the revocation list revokes them, by the kind of entry: user, uid, group, credential.",
			StabilityLevel: metrics.ALPHA,
		}, []string{"kind"}),
		entries: metrics.NewGauge(&metrics.GaugeOpts{
			Namespace:      namespace,
			Name:           "revocation_entries",
			Help:           "Entries of the revocation list that apply now, as this replica last read it.",
			StabilityLevel: metrics.ALPHA,
		}),
	}
	r.registry.MustRegister(rev.refusals, rev.entries)
	for _, kind := range revocationKinds {
		rev.refusals.WithLabelValues(kind)
	}
	r.revocations = rev
}

// Refused counts one credential refused by an entry of kind.
func (r *Revocations) Refused(kind string) {
	if r == nil {
		return
	}
	r.refusals.WithLabelValues(kind).Inc()
}

// SetEntries records how many entries apply now.
func (r *Revocations) SetEntries(n int) {
	if r == nil {
		return
	}
	r.entries.Set(float64(n))
}
