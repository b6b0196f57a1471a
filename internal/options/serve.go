package options

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/spf13/pflag"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	cliflag "k8s.io/component-base/cli/flag"
	logsapi "k8s.io/component-base/logs/api/v1"

	"github.com/kip-proxy/kip/internal/server"
	configv1alpha1 "github.com/kip-proxy/kip/pkg/apis/config/v1alpha1"
)

// Serve is the option set of `kip serve`.
type Serve struct {
	// ConfigFile is a KipConfiguration file; see Complete.
	ConfigFile string

	SecureServing *genericoptions.SecureServingOptions
	Audit         *genericoptions.AuditOptions
	Credentials   *Credentials
	Clusters      *Clusters
	Observability Observability
	Recording     Recording
	Logs          *logsapi.LoggingConfiguration

	Kubeconfig string
	// InClusterTokenFile and InClusterCAFile are kip's credentials when
	// Kubeconfig is empty: the ServiceAccount token the kubelet projects
	// and rotates, and the cluster's CA.
	InClusterTokenFile string
	InClusterCAFile    string

	ClientCAFile         string
	TrustClusterClientCA bool
	TokenCacheTTL        time.Duration

	ProbeBindAddress string
	ProbePort        int
	Profiling        bool

	MaxRequestsInFlight         int
	MaxMutatingRequestsInFlight int
	RequestTimeout              time.Duration
	ShutdownDelay               time.Duration
	StreamWriteTimeout          time.Duration
	FailedAuthentication        FailedAuthentication
}

// NewServe returns the defaults.
func NewServe() *Serve {
	ss := genericoptions.NewSecureServingOptions()
	ss.BindPort = 8443
	ss.ServerCert.PairName = "kip"
	// Many watches from one client share one connection. kube-apiserver
	// allows 100 streams (1000 for aggregated servers); kip takes the
	// larger, so a client opens a tenth of the connections.
	ss.HTTP2MaxStreamsPerConnection = 1000
	return &Serve{
		SecureServing:               ss,
		Audit:                       genericoptions.NewAuditOptions(),
		Credentials:                 NewCredentials(),
		Clusters:                    NewClusters(),
		Logs:                        logsapi.NewLoggingConfiguration(),
		InClusterTokenFile:          configv1alpha1.DefaultInClusterTokenFile,
		InClusterCAFile:             configv1alpha1.DefaultInClusterCAFile,
		TrustClusterClientCA:        true,
		TokenCacheTTL:               10 * time.Second,
		ProbeBindAddress:            "0.0.0.0",
		ProbePort:                   8081,
		MaxRequestsInFlight:         400,
		MaxMutatingRequestsInFlight: 200,
		RequestTimeout:              60 * time.Second,
		StreamWriteTimeout:          configv1alpha1.DefaultStreamWriteTimeout,
		FailedAuthentication:        NewFailedAuthentication(),
	}
}

// The sections of `kip serve --help`, in the order it prints them.
const (
	sectionServing        = "serving"
	sectionAuthentication = "authentication"
	sectionUpstream       = "upstream"
	sectionClusters       = "clusters"
	sectionAudit          = "audit"
	sectionObservability  = "observability"
	sectionLimits         = "limits"
	sectionLogging        = "logging"
	sectionMisc           = "misc"
)

// Flags returns every flag, grouped into the sections of --help.
func (o *Serve) Flags() cliflag.NamedFlagSets {
	var fss cliflag.NamedFlagSets
	o.SecureServing.AddFlags(fss.FlagSet(sectionServing))
	o.addAuthenticationFlags(fss.FlagSet(sectionAuthentication))
	o.addUpstreamFlags(fss.FlagSet(sectionUpstream))
	o.Clusters.AddFlags(fss.FlagSet(sectionClusters))
	o.Audit.AddFlags(fss.FlagSet(sectionAudit))
	o.Recording.AddFlags(fss.FlagSet(sectionAudit))
	o.addObservabilityFlags(fss.FlagSet(sectionObservability))
	o.addLimitFlags(fss.FlagSet(sectionLimits))
	logsapi.AddFlags(o.Logs, fss.FlagSet(sectionLogging))
	misc := fss.FlagSet(sectionMisc)
	misc.StringVar(&o.ConfigFile, "config", o.ConfigFile,
		"KipConfiguration file (kip.dev/v1alpha1) with any of these settings; flags given on the command line win over it.")
	return fss
}

// AddFlags registers every flag on fs, for callers that need no sections.
func (o *Serve) AddFlags(fs *pflag.FlagSet) {
	fss := o.Flags()
	for _, name := range fss.Order {
		fs.AddFlagSet(fss.FlagSets[name])
	}
}

func (o *Serve) addAuthenticationFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.ClientCAFile, "client-ca-file", o.ClientCAFile,
		"PEM bundle of CAs whose client certificates kip accepts, reloaded when it changes.")
	fs.BoolVar(&o.TrustClusterClientCA, "trust-cluster-client-ca", o.TrustClusterClientCA,
		"Also accept client certificates from the upstream's own client CA (ConfigMap kube-system/extension-apiserver-authentication, key client-ca-file), watched and reloaded.")
	fs.DurationVar(&o.TokenCacheTTL, "token-cache-ttl", o.TokenCacheTTL,
		"How long the answer of a TokenReview for a bearer token is reused.")
	o.Credentials.AddFlags(fs)
}

func (o *Serve) addUpstreamFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig,
		"Kubeconfig naming the upstream API server and kip's own credentials for it. In-cluster configuration when empty: the API server from KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT, with the token and CA below.")
	fs.StringVar(&o.InClusterTokenFile, "in-cluster-token-file", o.InClusterTokenFile,
		"ServiceAccount token kip authenticates upstream with when --kubeconfig is empty; re-read about once a minute, as the kubelet rotates it.")
	fs.StringVar(&o.InClusterCAFile, "in-cluster-ca-file", o.InClusterCAFile,
		"PEM CA bundle that verifies the upstream when --kubeconfig is empty; re-read when it changes.")
}

func (o *Serve) addObservabilityFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.ProbeBindAddress, "probe-bind-address", o.ProbeBindAddress,
		"Address of the plain-HTTP probe server (/livez, /readyz, /metrics).")
	fs.IntVar(&o.ProbePort, "probe-port", o.ProbePort, "Port of the probe server; 0 turns it off.")
	fs.BoolVar(&o.Profiling, "profiling", o.Profiling, "Serve /debug/pprof on the probe port.")
	o.Observability.AddFlags(fs)
}

func (o *Serve) addLimitFlags(fs *pflag.FlagSet) {
	fs.IntVar(&o.MaxRequestsInFlight, "max-requests-inflight", o.MaxRequestsInFlight,
		"Most non-mutating requests in flight at once; 0 means no limit.")
	fs.IntVar(&o.MaxMutatingRequestsInFlight, "max-mutating-requests-inflight", o.MaxMutatingRequestsInFlight,
		"Most mutating requests in flight at once; 0 means no limit.")
	fs.DurationVar(&o.RequestTimeout, "request-timeout", o.RequestTimeout,
		"Longest time a short request may take, and the longest wait for in-flight short requests on shutdown; watch, exec, attach, port-forward, proxy and logs are exempt.")
	fs.DurationVar(&o.ShutdownDelay, "shutdown-delay-duration", o.ShutdownDelay,
		"Time to keep serving after SIGTERM while /readyz already fails, so load balancers can stop sending traffic; then open watches and other streams end, so their clients resume on another replica.")
	fs.DurationVar(&o.StreamWriteTimeout, "stream-write-timeout", o.StreamWriteTimeout,
		"Longest time one write of a watch, logs -f or other streamed answer may wait for its client to read; a client that reads nothing for this long has its stream ended and kip's buffers for it freed. 0 means no limit.")
	o.FailedAuthentication.AddFlags(fs)
}

// minStreamWriteTimeout is the shortest --stream-write-timeout: below
// it, a client on a slow or briefly stalled network loses its watches.
const minStreamWriteTimeout = time.Second

// Validate reports every invalid option at once.
func (o *Serve) Validate() error {
	errs := o.SecureServing.Validate()
	errs = append(errs, o.Audit.Validate()...)
	errs = append(errs, o.Credentials.Validate()...)
	errs = append(errs, o.Clusters.Validate()...)
	errs = append(errs, o.Observability.Validate()...)
	errs = append(errs, o.Recording.Validate()...)
	errs = append(errs, o.FailedAuthentication.Validate()...)
	if lerrs := logsapi.Validate(o.Logs, nil, field.NewPath("logging")); len(lerrs) > 0 {
		errs = append(errs, lerrs.ToAggregate())
	}
	// The generic options read port 0 as "do not serve"; kip exists to serve.
	if o.SecureServing.BindPort == 0 {
		errs = append(errs, errors.New("--secure-port 0 would turn off kip's HTTPS port; give a port between 1 and 65535"))
	}
	if o.ProbePort < 0 || o.ProbePort > 65535 {
		errs = append(errs, fmt.Errorf("--probe-port %d must be between 0 and 65535", o.ProbePort))
	}
	if o.ProbePort != 0 && net.ParseIP(o.ProbeBindAddress) == nil {
		errs = append(errs, fmt.Errorf("--probe-bind-address %q is not an IP address", o.ProbeBindAddress))
	}
	if o.ClientCAFile != "" {
		if _, err := os.Stat(o.ClientCAFile); err != nil {
			errs = append(errs, fmt.Errorf("--client-ca-file: %w", err))
		}
	}
	if o.Kubeconfig != "" {
		if _, err := os.Stat(o.Kubeconfig); err != nil {
			errs = append(errs, fmt.Errorf("--kubeconfig: %w", err))
		}
	}
	for name, d := range map[string]time.Duration{"--token-cache-ttl": o.TokenCacheTTL, "--request-timeout": o.RequestTimeout} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, not %s", name, d))
		}
	}
	if d := o.StreamWriteTimeout; d != 0 && d < minStreamWriteTimeout {
		errs = append(errs, fmt.Errorf("--stream-write-timeout %s would end streams whose client only paused; give 0 (no limit) or at least %s", d, minStreamWriteTimeout))
	}
	if o.MaxRequestsInFlight < 0 || o.MaxMutatingRequestsInFlight < 0 {
		errs = append(errs, errors.New("--max-requests-inflight and --max-mutating-requests-inflight must not be negative"))
	}
	return utilerrors.NewAggregate(errs)
}

// Config applies the options. It opens the listeners and, when no serving
// certificate is given, generates a self-signed one (into --cert-dir when set).
func (o *Serve) Config() (server.Config, error) {
	upstream, err := o.homeConfig()
	if err != nil {
		return server.Config{}, err
	}
	if err := o.SecureServing.MaybeDefaultWithSelfSignedCerts("localhost", nil, []net.IP{net.ParseIP("127.0.0.1")}); err != nil {
		return server.Config{}, fmt.Errorf("generating a self-signed serving certificate: %w", err)
	}
	gc := server.NewGenericConfig()
	if err := o.SecureServing.ApplyTo(&gc.SecureServing); err != nil {
		return server.Config{}, fmt.Errorf("opening the secure port: %w", err)
	}
	if err := o.Audit.ApplyTo(gc); err != nil {
		return server.Config{}, fmt.Errorf("configuring audit: %w", err)
	}
	gc.MaxRequestsInFlight = o.MaxRequestsInFlight
	gc.MaxMutatingRequestsInFlight = o.MaxMutatingRequestsInFlight
	gc.RequestTimeout = o.RequestTimeout
	gc.ShutdownDelayDuration = o.ShutdownDelay

	cfg := server.Config{
		Generic:              gc,
		Upstream:             upstream,
		ClientCAFile:         o.ClientCAFile,
		TrustClusterClientCA: o.TrustClusterClientCA,
		TokenCacheTTL:        o.TokenCacheTTL,
		Credentials:          o.Credentials.config(),
		Clusters:             o.Clusters.config(),
		Profiling:            o.Profiling,
		StreamWriteTimeout:   o.StreamWriteTimeout,
	}
	o.Observability.ApplyTo(&cfg)
	o.FailedAuthentication.ApplyTo(&cfg)
	if err := o.Recording.ApplyTo(&cfg); err != nil {
		return server.Config{}, fmt.Errorf("configuring session recording: %w", err)
	}
	if o.ProbePort != 0 {
		addr := net.JoinHostPort(o.ProbeBindAddress, strconv.Itoa(o.ProbePort))
		if cfg.ProbeListener, err = net.Listen("tcp", addr); err != nil {
			return server.Config{}, fmt.Errorf("opening the probe port %s: %w", addr, err)
		}
	}
	return cfg, nil
}

// homeConfig is the upstream of single-cluster kip. A gateway serves no
// home cluster; it needs one only to read Secrets from (cluster Secrets, the
// signer CA's), and has none when neither --kubeconfig is given nor kip
// runs in a cluster.
func (o *Serve) homeConfig() (*rest.Config, error) {
	if !o.Clusters.Enabled() || o.Kubeconfig != "" {
		return o.upstreamConfig()
	}
	if _, err := os.Stat(o.InClusterTokenFile); err != nil || os.Getenv("KUBERNETES_SERVICE_HOST") == "" {
		if o.Clusters.SecretNamespace != "" {
			return nil, errors.New("--clusters-secret-namespace reads Secrets from the home cluster, and kip has none: give --kubeconfig or run kip in that cluster")
		}
		return nil, nil
	}
	return o.upstreamConfig()
}

func (o *Serve) upstreamConfig() (*rest.Config, error) {
	var (
		cfg *rest.Config
		err error
	)
	if o.Kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
	} else {
		cfg, err = o.inClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("loading the upstream configuration (set --kubeconfig outside a cluster): %w", err)
	}
	// kip's reviews and its own-name check must run as kip itself: a
	// kubeconfig that impersonates someone would make them speak for that
	// user instead.
	if im := cfg.Impersonate; im.UserName != "" || im.UID != "" || len(im.Groups) > 0 || len(im.Extra) > 0 {
		return nil, fmt.Errorf("the upstream kubeconfig %s impersonates %q (as/as-groups/as-uid): kip must reach the API server as itself; remove them", o.Kubeconfig, im.UserName)
	}
	// TokenReviews and SubjectAccessReviews are kip's only own API calls;
	// client-side throttling would only add latency to users' requests.
	cfg.QPS, cfg.Burst = 200, 400
	cfg.UserAgent = "kip"
	return cfg, nil
}
