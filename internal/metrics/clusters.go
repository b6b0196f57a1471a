package metrics

import "k8s.io/component-base/metrics"

// The values of kip_cluster_entries_refused_total's source label: where
// the gateway reads its clusters from.
const (
	// SourceDir is --clusters-dir, a directory of kubeconfig files.
	SourceDir = "dir"
	// SourceSecrets is the labeled Secrets in --clusters-secret-namespace.
	SourceSecrets = "secrets"
)

// The values of kip_clusters' state label.
const (
	stateRegistered = "registered"
	stateRefused    = "refused"
)

// Clusters records the clusters a gateway serves: whether each answers,
// how many entries its sources registered and refused. Only registered
// clusters have series: Forget removes a cluster's when it goes.
//
// Every method is a no-op on a nil *Clusters.
type Clusters struct {
	up, entries *metrics.GaugeVec
	refused     *metrics.CounterVec
	// requests holds the cluster's request series, which go with it.
	requests *Requests
}

// SetUp records how kip's last contact with cluster name went: up if it
// answered, down if it failed (unreachable, refused kip's credentials,
// answered with a server error).
func (c *Clusters) SetUp(name string, up bool) {
	if c == nil {
		return
	}
	v := 0.0
	if up {
		v = 1
	}
	c.up.WithLabelValues(name).Set(v)
}

// Forget removes every series of cluster name: its kip_cluster_up and its
// request metrics. The gateway calls it when the cluster is unregistered,
// so that the cluster label keeps to the registered names; not when the
// cluster's credentials change, which keeps its name and its counts.
func (c *Clusters) Forget(name string) {
	// "" is no cluster's name but the label of the requests addressed to
	// none, which stay.
	if c == nil || name == "" {
		return
	}
	c.up.DeleteLabelValues(name)
	c.requests.forget(name)
}

// Registered records what the sources hold after a change: registered
// clusters served, refused entries that were not (bad or duplicate).
func (c *Clusters) Registered(registered, refused int) {
	if c == nil {
		return
	}
	c.entries.WithLabelValues(stateRegistered).Set(float64(registered))
	c.entries.WithLabelValues(stateRefused).Set(float64(refused))
}

// Refused counts one entry that source (SourceDir, SourceSecrets) refused
// to register.
func (c *Clusters) Refused(source string) {
	if c == nil {
		return
	}
	c.refused.WithLabelValues(source).Inc()
}

func (r *Recorder) declareClusters() {
	r.clusterUp = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace:      namespace,
		Name:           "cluster_up",
		Help:           "1 if kip's last contact with the cluster succeeded, 0 if it failed, by cluster. Gateway mode only; only registered clusters have a series.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"cluster"})
	r.clusterEntries = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace:      namespace,
		Name:           "clusters",
		Help:           "Entries in the gateway's cluster sources, by state: registered (served) or refused (a bad or duplicate entry; the log says why). Gateway mode only.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"state"})
	r.clusterEntriesRefused = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      namespace,
		Name:           "cluster_entries_refused_total",
		Help:           "Cluster entries refused when a source was read, by source: dir (--clusters-dir) or secrets (--clusters-secret-namespace). Gateway mode only.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"source"})
	r.registry.MustRegister(r.clusterUp, r.clusterEntries, r.clusterEntriesRefused)
	// In gateway mode the counts start at zero, so that an alert on a
	// rise sees the first refusal.
	if r.clusterOf != nil {
		r.clusterEntries.WithLabelValues(stateRegistered)
		r.clusterEntries.WithLabelValues(stateRefused)
		for _, source := range []string{SourceDir, SourceSecrets} {
			r.clusterEntriesRefused.WithLabelValues(source)
		}
	}
}
