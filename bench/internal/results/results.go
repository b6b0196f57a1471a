package results

import "time"

// Run is one benchmark run.
type Run struct {
	Started  time.Time `json:"started"`
	Seconds  float64   `json:"seconds"`
	Smoke    bool      `json:"smoke"`
	Machine  Machine   `json:"machine"`
	Versions Versions  `json:"versions"`
	// Setup records how the targets were configured, one line each.
	Setup []string `json:"setup"`

	SmallGet    []Load        `json:"small_get"`
	ProxyOnly   []Load        `json:"proxy_only"`
	List        []List        `json:"large_list"`
	Watch       []Watch       `json:"watch"`
	PortForward []PortForward `json:"port_forward"`
	// Exchange is absent from runs made before kip served the credential
	// exchange.
	Exchange []Exchange `json:"credential_exchange,omitempty"`
	// Gateway is absent from runs made before kip served many clusters.
	Gateway *Gateway `json:"gateway,omitempty"`
	// Recording is absent from runs made before kip recorded sessions.
	Recording *Recording `json:"recording,omitempty"`
	// Skipped says why a workload has no numbers, keyed by workload name.
	Skipped map[string]string `json:"skipped,omitempty"`
	// Profiles were taken from kip and kube-apiserver under load.
	Profiles []Profile `json:"profiles,omitempty"`
}

// Machine is where the run happened.
type Machine struct {
	Cores    int    `json:"cores"`
	CPUModel string `json:"cpu_model"`
	MemoryGB int    `json:"memory_gb"`
	Kernel   string `json:"kernel"`
	// LoadBefore and LoadAfter are /proc/loadavg's 1-minute average when
	// the run started and ended: anything else busy on the machine shows.
	LoadBefore float64 `json:"load_before"`
	LoadAfter  float64 `json:"load_after"`
}

// Versions of what was measured.
type Versions struct {
	Kip           string `json:"kip"`
	KubeAPIServer string `json:"kube_apiserver"`
	Kubectl       string `json:"kubectl"`
	Etcd          string `json:"etcd"`
	Go            string `json:"go"`
}

// Latency summarises a distribution of latencies, in milliseconds.
type Latency struct {
	Mean float64 `json:"mean_ms"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
}

// Point is one point of a curve.
type Point struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
}

// Load is a closed-loop request workload against one target at one
// concurrency, summed over all rounds.
type Load struct {
	Target      string  `json:"target"`
	Concurrency int     `json:"concurrency"`
	Requests    int     `json:"requests"`
	Errors      int     `json:"errors"`
	FirstError  string  `json:"first_error,omitempty"`
	Seconds     float64 `json:"seconds"`
	RPS         float64 `json:"requests_per_second"`
	Latency     Latency `json:"latency"`
	// CDF is the latency distribution: X in milliseconds, Y the fraction
	// of requests at or below it.
	CDF []Point `json:"cdf"`
	// ProxyCPUPer1k is the CPU seconds the proxy process used per 1,000
	// requests; nil when the target has no process of its own.
	ProxyCPUPer1k *float64 `json:"proxy_cpu_seconds_per_1k,omitempty"`
	// UpstreamCPUPer1k is the same for the upstream (kube-apiserver, or the
	// in-process trivial upstream, which is not measured).
	UpstreamCPUPer1k *float64 `json:"upstream_cpu_seconds_per_1k,omitempty"`
	// Connections is how many connections the client dialled.
	Connections int64 `json:"client_connections"`
}

// List is the large LIST against one target with one Accept-Encoding.
type List struct {
	Target string `json:"target"`
	// Encoding is the Accept-Encoding the client sent ("" for none).
	Encoding string `json:"accept_encoding"`
	// ContentEncoding is what the response came back as.
	ContentEncoding string `json:"content_encoding"`
	Objects         int    `json:"objects"`
	// Bytes is the size of the response as it arrived.
	Bytes int64 `json:"bytes"`
	// Seconds are the times to the last byte, one per round.
	Seconds []float64 `json:"seconds"`
	Median  float64   `json:"median_seconds"`
	// ProxyRSSGrowth is the largest rise of the proxy's RSS above its level
	// before the request, over all rounds, in bytes.
	ProxyRSSGrowth    *int64 `json:"proxy_rss_growth_bytes,omitempty"`
	UpstreamRSSGrowth *int64 `json:"upstream_rss_growth_bytes,omitempty"`
	Errors            int    `json:"errors"`
	FirstError        string `json:"first_error,omitempty"`
}

// Watch is the watch fan-out against one target.
type Watch struct {
	Target   string `json:"target"`
	Watchers int    `json:"watchers"`
	// Opened is how many watches were established, Delivered how many saw
	// the change.
	Opened      int     `json:"opened"`
	Delivered   int     `json:"delivered"`
	OpenSeconds float64 `json:"open_seconds"`
	// Delivery is the time from sending the change to each watcher's
	// receipt of the event.
	Delivery Latency `json:"delivery"`
	// Connections is how many connections the client dialled, and
	// ConnectionsUsed how many of them carried watches: Go's client dials
	// one per waiting request when every connection is at its stream limit,
	// and closes the spares.
	Connections     int64 `json:"client_connections_dialled"`
	ConnectionsUsed int   `json:"client_connections_used"`
	// ProxyRSSPerWatch is (RSS with every watch open − RSS before) / N, in
	// bytes, the largest over rounds.
	ProxyRSSPerWatch    *float64 `json:"proxy_rss_per_watch_bytes,omitempty"`
	UpstreamRSSPerWatch *float64 `json:"upstream_rss_per_watch_bytes,omitempty"`
	// Curve is proxy RSS growth in MiB (Y) against open watches (X), from
	// the first round.
	Curve      []Point `json:"proxy_rss_curve,omitempty"`
	FirstError string  `json:"first_error,omitempty"`
}

// PortForward is port-forward throughput through one target: bytes sent
// by a server behind the test node's pod port, read through the forward.
type PortForward struct {
	Target string `json:"target"`
	// Bytes is the size of each transfer; Seconds has one time per round.
	Bytes   int64     `json:"bytes"`
	Seconds []float64 `json:"seconds"`
	// MBps is the median rate, in 10^6 bytes per second.
	MBps float64 `json:"mb_per_second"`
	// ProxyCPUPerGiB and UpstreamCPUPerGiB are CPU seconds per GiB moved.
	ProxyCPUPerGiB    *float64 `json:"proxy_cpu_seconds_per_gib,omitempty"`
	UpstreamCPUPerGiB *float64 `json:"upstream_cpu_seconds_per_gib,omitempty"`
	Errors            int      `json:"errors"`
	FirstError        string   `json:"first_error,omitempty"`
}

// Exchange is the credential exchange (TokenCredentialRequest) with one
// kind of token and key, at one concurrency. Load.Target names the kind;
// its ProxyCPUPer1k is kip's CPU seconds per 1,000 exchanges, which is
// milliseconds per exchange.
type Exchange struct {
	// Token is where the token comes from: "oidc" (an ID token from Ory
	// Hydra, verified by kip's OIDC verifier) or "webhook" (a TokenReview
	// webhook, whose answers kip caches).
	Token string `json:"token"`
	// GeneratedKey says the requests carried no CSR, so kip generated each
	// key pair and sent the private key back.
	GeneratedKey bool `json:"generated_key"`
	// User is whom the certificates were issued to, read from one of them
	// after checking it chains to kip's signer CA.
	User string `json:"certificate_user"`
	Load
}

// Profile is a pprof profile taken during a workload.
type Profile struct {
	// Name says whose profile it is and of what; About says under which load.
	Name  string `json:"name"`
	About string `json:"about"`
	// File is the pprof file, relative to the results directory.
	File string `json:"file"`
	// Top and TopCum are `go tool pprof -top` output, flat and cumulative.
	Top    string `json:"top"`
	TopCum string `json:"top_cum"`
}

// Gateway is kip in gateway mode (--clusters-dir): the cost of routing by
// cluster, and the cost of a large registry.
type Gateway struct {
	// Clusters is how many entries the routed kip had; its requests took
	// them in turn.
	Clusters int `json:"clusters"`
	// Routing is the small GET at concurrency 32 through a single-cluster
	// kip ("kip") and a gateway kip ("kip-gateway"), taking turns.
	Routing []Load `json:"routing"`
	// Registry is absent when that workload did not run.
	Registry *Registry `json:"registry,omitempty"`
}

// Registry is a gateway kip with many registered clusters, all idle, set
// beside one with a single entry.
type Registry struct {
	Clusters         int `json:"clusters"`
	BaselineClusters int `json:"baseline_clusters"`
	// StartupSeconds is from starting the process to /readyz answering 200.
	StartupSeconds         float64 `json:"startup_seconds"`
	BaselineStartupSeconds float64 `json:"baseline_startup_seconds"`
	// RSS is VmRSS after a forced GC and a pause, with no request served
	// through any cluster yet.
	RSS         int64 `json:"rss_bytes"`
	BaselineRSS int64 `json:"baseline_rss_bytes"`
	// RSSPerCluster is (RSS − BaselineRSS) / (Clusters − BaselineClusters).
	RSSPerCluster float64 `json:"rss_per_cluster_bytes"`
	// Connections are kip's established TCP connections to kube-apiserver
	// while idle; AfterFirstUse after one request through one cluster.
	Connections         int `json:"upstream_connections"`
	BaselineConnections int `json:"baseline_upstream_connections"`
	AfterFirstUse       int `json:"upstream_connections_after_first_use"`
	// Changes are how long each kind of change to the directory took to be
	// applied.
	Changes    []Change `json:"changes"`
	FirstError string   `json:"first_error,omitempty"`
}

// Change is one kind of registry change, made several times: the time from
// the file's rename (or removal) to the first answer that shows it.
type Change struct {
	// Kind says what changed and what showed it applied.
	Kind    string    `json:"kind"`
	Seconds []float64 `json:"seconds"`
	Median  float64   `json:"median_seconds"`
	Max     float64   `json:"max_seconds"`
}

// Recording is what recording exec and attach sessions costs kip: a kip
// with --recording-dir set beside one without, both fresh and otherwise
// alike, and direct access for scale.
type Recording struct {
	// Transfers are exec stdout streams and port-forward copies, each
	// repeated once per round through every target.
	Transfers []Transfer `json:"transfers"`
	// Memory is each kip with many idle exec sessions open.
	Memory []SessionMemory `json:"memory"`
	// RecordedFiles and RecordedBytes are the recordings the recorded kip
	// wrote during the transfers: proof that it recorded, and how much.
	RecordedFiles int   `json:"recorded_files"`
	RecordedBytes int64 `json:"recorded_bytes"`
	// ExecStdoutBytes is the stdout those recordings hold, summed over the
	// exec transfers through the recorded kip.
	ExecStdoutBytes int64 `json:"exec_stdout_bytes"`
}

// Transfer is one kind of large transfer through one target.
type Transfer struct {
	Target string `json:"target"`
	// Kind is "exec" (a command writing Bytes to stdout) or "port-forward"
	// (a server behind a pod port sending Bytes).
	Kind string `json:"kind"`
	// Protocol is "websocket" or "spdy", as the client spoke it.
	Protocol string `json:"protocol"`
	// Bytes is the size of each transfer; Seconds has one time per round.
	Bytes   int64     `json:"bytes"`
	Seconds []float64 `json:"seconds"`
	// MBps is the median rate, in 10^6 bytes per second.
	MBps float64 `json:"mb_per_second"`
	// ProxyCPUPerMiB and UpstreamCPUPerMiB are CPU seconds per MiB moved,
	// over all rounds, of the proxy process (nil for direct) and of
	// kube-apiserver.
	ProxyCPUPerMiB    *float64 `json:"proxy_cpu_seconds_per_mib,omitempty"`
	UpstreamCPUPerMiB *float64 `json:"upstream_cpu_seconds_per_mib,omitempty"`
	Errors            int      `json:"errors"`
	FirstError        string   `json:"first_error,omitempty"`
}

// SessionMemory is one kip holding Sessions idle exec sessions open over
// one protocol.
type SessionMemory struct {
	Target   string `json:"target"`
	Protocol string `json:"protocol"`
	Sessions int    `json:"sessions"`
	// Opened is how many sessions were established and echoed a line,
	// OpenConcurrency of them opening at a time.
	Opened          int     `json:"opened"`
	OpenConcurrency int     `json:"open_concurrency"`
	OpenSeconds     float64 `json:"open_seconds"`
	// RSSBefore is VmRSS after a forced GC with no session open, RSSOpen
	// the same with every session open.
	RSSBefore int64 `json:"rss_before_bytes"`
	RSSOpen   int64 `json:"rss_open_bytes"`
	// RSSPerSession is (RSSOpen − RSSBefore) / Opened.
	RSSPerSession float64 `json:"rss_per_session_bytes"`
	// HeapPerSession is the same for the Go heap and stacks in use, from
	// kip's /metrics: less noisy than RSS, which keeps freed pages.
	HeapPerSession float64 `json:"heap_per_session_bytes"`
	// RecordingFiles counts the recordings the recorded kip had written by
	// the end, warm-up sessions included; 0 for the unrecorded kip.
	RecordingFiles int    `json:"recording_files,omitempty"`
	FirstError     string `json:"first_error,omitempty"`
}
