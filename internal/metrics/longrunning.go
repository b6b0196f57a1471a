package metrics

import "k8s.io/component-base/metrics"

// The values of kip_longrunning_ended_total's reason label.
const (
	// EndedWriteDeadline: a write to the caller did not finish within
	// --stream-write-timeout; the caller had stopped reading.
	EndedWriteDeadline = "write-deadline"
	// EndedShutdown: kip began draining and ended the stream so that its
	// client resumes on another replica.
	EndedShutdown = "shutdown"
	// EndedRevoked: the revocation list came to cover the caller.
	EndedRevoked = "revoked"
	// EndedClusterRemoved: a gateway stopped serving the request's
	// cluster, or replaced its entry.
	EndedClusterRemoved = "cluster-removed"
	// EndedCAUntrusted: kip stopped trusting the CA that signed the
	// caller's certificate (kip revoke signer-ca, a retired signer CA
	// dropped, a CA removed from --client-ca-file or the cluster's).
	EndedCAUntrusted = "ca-untrusted"
)

var endedReasons = []string{EndedWriteDeadline, EndedShutdown, EndedRevoked, EndedClusterRemoved, EndedCAUntrusted}

// LongRunningEnds counts the long-running requests (watches, logs -f, and
// for revocation and cluster removal also exec, attach and port-forward)
// kip ended itself, rather than the caller or the upstream.
//
// Every method is a no-op on a nil *LongRunningEnds.
type LongRunningEnds struct {
	total *metrics.CounterVec
}

// LongRunningEnds is the recorder of streams kip ended; nil for a nil
// Recorder, which records nothing.
func (r *Recorder) LongRunningEnds() *LongRunningEnds {
	if r == nil {
		return nil
	}
	return r.longRunningEnds
}

func (r *Recorder) declareLongRunningEnds() {
	ends := &LongRunningEnds{total: metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      namespace,
		Name:           "longrunning_ended_total",
		Help:           "Long-running requests kip ended itself, by reason: write-deadline (a write of a streamed answer, such as a watch or logs -f, took longer than --stream-write-timeout: the caller stopped reading), shutdown (kip began draining; the client resumes on another replica), revoked (the revocation list came to cover the caller), cluster-removed (a gateway stopped serving the cluster), ca-untrusted (kip stopped trusting the CA of the caller's certificate). The last three count exec, attach and port-forward sessions too.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"reason"})}
	r.registry.MustRegister(ends.total)
	for _, reason := range endedReasons {
		ends.total.WithLabelValues(reason)
	}
	r.longRunningEnds = ends
}

// Ended counts one request kip ended for reason, one of the Ended
// constants; any other reason is not counted, so the label stays bounded.
func (e *LongRunningEnds) Ended(reason string) {
	if e == nil {
		return
	}
	for _, known := range endedReasons {
		if reason == known {
			e.total.WithLabelValues(reason).Inc()
			return
		}
	}
}
