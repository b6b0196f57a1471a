package metrics

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"time"

	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/component-base/metrics"
)

const (
	// otherResource labels every resource that is not (yet) a label of
	// its own.
	otherResource = "other"
	// maxResources bounds the resource labels, whatever the upstream
	// serves: enough for a cluster with many CRDs.
	maxResources = 1000
)

// longRunningKinds are the values of kip_longrunning_requests' kind label,
// indexed by the kind constants below.
var longRunningKinds = [...]string{"watch", "exec", "attach", "portforward", "log", "proxy"}

const (
	kindWatch = iota
	kindExec
	kindAttach
	kindPortForward
	kindLog
	kindProxy
	notLongRunning = -1
)

// Requests records what kip's secure port serves: every request by
// cluster, verb, resource and code, how long the upstream takes with short
// requests, and the long-running requests in flight. It resolves each
// label combination once and reuses it.
type Requests struct {
	// clusterOf names the cluster a request is addressed to; nil in
	// single-cluster mode, where the label is "".
	clusterOf func(context.Context) (string, bool)
	// resources maps a resource and subresource to its label. Only a
	// resource the upstream has answered with success gets one of its
	// own; until then, and for every made-up name, the label is "other".
	// The labels are shared by every cluster.
	resources snapshotMap[resourceKey, string]
	counters  snapshotMap[counterKey, metrics.CounterMetric]
	durations snapshotMap[durationKey, metrics.ObserverMetric]
	inFlight  snapshotMap[inFlightKey, metrics.GaugeMetric]
	// total, upstream and longRunning are the Recorder's vectors that
	// count and time requests.
	total       *metrics.CounterVec
	upstream    *metrics.HistogramVec
	longRunning *metrics.GaugeVec
}

type resourceKey struct{ resource, subresource string }

type counterKey struct {
	cluster, verb, resource string
	code                    int
}

type durationKey struct{ cluster, verb, resource string }

type inFlightKey struct {
	cluster string
	kind    int
}

// newRequests records into a Recorder's request metrics.
func newRequests(clusterOf func(context.Context) (string, bool), total *metrics.CounterVec, upstream *metrics.HistogramVec, longRunning *metrics.GaugeVec) *Requests {
	r := &Requests{clusterOf: clusterOf, total: total, upstream: upstream, longRunning: longRunning}
	// The kinds start at zero, so that a dashboard finds every series
	// before the first event. A cluster's own series start at its first
	// long-running request: a thousand idle clusters cost nothing here.
	for kind := range longRunningKinds {
		r.gauge(inFlightKey{kind: kind})
	}
	return r
}

// WithRequests counts every request h serves. It must sit inside
// WithRequestInfo, which names the verb and resource, and in gateway mode
// inside the filter that records the cluster.
func (r *Requests) WithRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rec := &codeRecorder{ResponseWriter: w}
		returned := false
		defer func() {
			// A handler that panics (an upstream stream that broke off
			// ends in http.ErrAbortHandler) is counted with the code it
			// had sent, or 500 if it had sent none.
			code := rec.code
			if code == 0 {
				code = http.StatusOK
				if !returned {
					code = http.StatusInternalServerError
				}
			}
			ctx := req.Context()
			info, _ := request.RequestInfoFrom(ctx)
			r.count(r.cluster(ctx), info, code)
		}()
		h.ServeHTTP(rec, req)
		returned = true
	})
}

// WithUpstream measures the requests h hands to the upstream: the time a
// short request takes, and how many long-running ones are open.
func (r *Requests) WithUpstream(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ctx := req.Context()
		cluster := r.cluster(ctx)
		info, _ := request.RequestInfoFrom(ctx)
		if kind := longRunningKind(info); kind != notLongRunning {
			g := r.gauge(inFlightKey{cluster: cluster, kind: kind})
			g.Inc()
			defer g.Dec()
			h.ServeHTTP(w, req)
			return
		}
		start := time.Now()
		defer func() { r.observe(cluster, info, time.Since(start)) }()
		h.ServeHTTP(w, req)
	})
}

// cluster is the cluster label of a request: "" when it is addressed to
// none, and always in single-cluster mode.
func (r *Requests) cluster(ctx context.Context) string {
	if r.clusterOf == nil {
		return ""
	}
	if name, ok := r.clusterOf(ctx); ok {
		return name
	}
	return ""
}

func (r *Requests) count(cluster string, info *request.RequestInfo, code int) {
	key := counterKey{cluster: cluster, verb: verbOf(info), resource: r.admit(info, code), code: code}
	if c, ok := r.counters.get(key); ok {
		c.Inc()
		return
	}
	c, _ := r.counters.getOrAdd(key, func() metrics.CounterMetric {
		return r.total.WithLabelValues(key.cluster, key.verb, key.resource, codeLabel(key.code))
	}, nil)
	c.Inc()
}

func (r *Requests) observe(cluster string, info *request.RequestInfo, d time.Duration) {
	key := durationKey{cluster: cluster, verb: verbOf(info), resource: r.resourceLabel(info)}
	if o, ok := r.durations.get(key); ok {
		o.Observe(d.Seconds())
		return
	}
	o, _ := r.durations.getOrAdd(key, func() metrics.ObserverMetric {
		return r.upstream.WithLabelValues(key.cluster, key.verb, key.resource)
	}, nil)
	o.Observe(d.Seconds())
}

func (r *Requests) gauge(key inFlightKey) metrics.GaugeMetric {
	if g, ok := r.inFlight.get(key); ok {
		return g
	}
	g, _ := r.inFlight.getOrAdd(key, func() metrics.GaugeMetric {
		return r.longRunning.WithLabelValues(key.cluster, longRunningKinds[key.kind])
	}, nil)
	return g
}

// forget removes every request series of cluster, so that the series
// stay those of the registered clusters. Each series leaves the vector
// under its map's lock, where a concurrent first request cannot pick up
// the old series again. A request to cluster still in flight may add its
// series back when it ends, as a watch's gauge does not: it holds the old
// one.
func (r *Requests) forget(cluster string) {
	r.counters.removeIf(func(k counterKey) bool { return k.cluster == cluster }, func(k counterKey) {
		r.total.Delete(map[string]string{"cluster": k.cluster, "verb": k.verb, "resource": k.resource, "code": codeLabel(k.code)})
	})
	r.durations.removeIf(func(k durationKey) bool { return k.cluster == cluster }, func(k durationKey) {
		r.upstream.Delete(map[string]string{"cluster": k.cluster, "verb": k.verb, "resource": k.resource})
	})
	r.inFlight.removeIf(func(k inFlightKey) bool { return k.cluster == cluster }, func(k inFlightKey) {
		r.longRunning.Delete(map[string]string{"cluster": k.cluster, "kind": longRunningKinds[k.kind]})
	})
}

// resourceLabel is the label of an admitted resource, "" for a request
// that names no resource, and "other" for the rest.
func (r *Requests) resourceLabel(info *request.RequestInfo) string {
	if info == nil || !info.IsResourceRequest {
		return ""
	}
	if label, ok := r.resources.get(resourceKey{info.Resource, info.Subresource}); ok {
		return label
	}
	return otherResource
}

// admit is resourceLabel that first gives a resource its own label when
// the answer shows that the upstream serves it. A failure proves nothing:
// a caller can be refused, or told 404, for a resource that does not
// exist, so made-up names never become labels.
func (r *Requests) admit(info *request.RequestInfo, code int) string {
	label := r.resourceLabel(info)
	if label != otherResource || !served(code) {
		return label
	}
	key := resourceKey{info.Resource, info.Subresource}
	label, ok := r.resources.getOrAdd(key, func() string {
		if key.subresource == "" {
			return key.resource
		}
		return key.resource + "/" + key.subresource
	}, func(n int) bool { return n >= maxResources })
	if !ok {
		return otherResource
	}
	return label
}

// served reports whether a status code shows the upstream serves the
// resource: a success, or a switch to a stream (exec, attach).
func served(code int) bool {
	return code == http.StatusSwitchingProtocols || code >= 200 && code < 300
}

func verbOf(info *request.RequestInfo) string {
	if info == nil {
		return "other"
	}
	return verbLabel(info.Verb)
}

// longRunningKind names the requests that kip's LongRunningFunc exempts
// from the request timeout: watches and the streaming subresources.
func longRunningKind(info *request.RequestInfo) int {
	if info == nil {
		return notLongRunning
	}
	switch info.Verb {
	case "watch":
		return kindWatch
	case "proxy":
		return kindProxy
	}
	if !info.IsResourceRequest {
		return notLongRunning
	}
	switch info.Subresource {
	case "exec":
		return kindExec
	case "attach":
		return kindAttach
	case "portforward":
		return kindPortForward
	case "log":
		return kindLog
	case "proxy":
		return kindProxy
	}
	return notLongRunning
}

// codeRecorder remembers the status code of a response. Like every
// wrapper in kip's chain it keeps flushing and hijacking available, for
// watches and for upgrades.
type codeRecorder struct {
	http.ResponseWriter
	code int
}

func (w *codeRecorder) WriteHeader(code int) {
	// 1xx answers other than 101 precede the real one.
	if w.code == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *codeRecorder) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *codeRecorder) Flush() {
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack hands the connection over; kip's proxy does so only after the
// upstream answered 101 Switching Protocols.
func (w *codeRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && w.code == 0 {
		w.code = http.StatusSwitchingProtocols
	}
	return conn, rw, err
}

func (w *codeRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }
