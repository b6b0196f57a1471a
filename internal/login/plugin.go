package login

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	clientauthv1 "k8s.io/client-go/pkg/apis/clientauthentication/v1"
	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/internal/login/cache"
	"github.com/kip-proxy/kip/internal/login/execcredential"
	"github.com/kip-proxy/kip/internal/login/oidcflow"
)

// Mode is what kip login hands to kubectl.
type Mode string

const (
	// ModeCertificate exchanges the token for a kip client certificate.
	ModeCertificate Mode = "certificate"
	// ModeToken hands the token itself to kubectl.
	ModeToken Mode = "token"
)

// DefaultExpiryMargin is how long before expiry a cached token or
// certificate stops being reused, so that it does not expire in flight.
const DefaultExpiryMargin = 30 * time.Second

// Config is what every kind of login shares.
type Config struct {
	Mode     Mode
	CacheDir string
	// ExecInfo is the value of KUBERNETES_EXEC_INFO.
	ExecInfo string
	// KipServer and KipCAData name kip when ExecInfo carries no cluster.
	KipServer string
	KipCAData []byte
	// Stderr is where the user reads progress and instructions.
	Stderr io.Writer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ExpiryMargin replaces DefaultExpiryMargin when positive.
	ExpiryMargin time.Duration
	// MaxRetryWait replaces exchange.DefaultMaxRetryWait when positive.
	MaxRetryWait time.Duration
	// Caller is the pid of the process that ran kip login (kubectl's,
	// os.Getppid); 0 when unknown. See askedAgain.
	Caller int
}

// Plugin answers kubectl exec credential calls.
type Plugin struct {
	cfg    Config
	source tokenSource
}

// NewOIDC returns the plugin of `kip login oidc`.
func NewOIDC(cfg Config, flow oidcflow.Config) *Plugin {
	cfg = withDefaults(cfg)
	if flow.Stderr == nil {
		flow.Stderr = cfg.Stderr
	}
	if flow.Now == nil {
		flow.Now = cfg.Now
	}
	return &Plugin{cfg: cfg, source: &oidcSource{cfg: cfg, flow: flow, client: oidcflow.New(flow)}}
}

// NewStatic returns the plugin of `kip login static`.
func NewStatic(cfg Config, token string) *Plugin {
	return &Plugin{cfg: withDefaults(cfg), source: staticSource(token)}
}

func withDefaults(cfg Config) Config {
	if cfg.Stderr == nil {
		cfg.Stderr = io.Discard
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ExpiryMargin <= 0 {
		cfg.ExpiryMargin = DefaultExpiryMargin
	}
	if cfg.Mode == "" {
		cfg.Mode = ModeCertificate
	}
	return cfg
}

// Run answers one kubectl call: it writes the ExecCredential to stdout.
func (p *Plugin) Run(ctx context.Context, stdout io.Writer) error {
	req, err := execcredential.ParseRequest(p.cfg.ExecInfo)
	if err != nil {
		return err
	}
	status, err := p.Credential(ctx, req)
	if err != nil {
		return err
	}
	return execcredential.Write(stdout, req.APIVersion, status)
}

// Credential returns the status of the ExecCredential for req.
func (p *Plugin) Credential(ctx context.Context, req execcredential.Request) (*clientauthv1.ExecCredentialStatus, error) {
	key := p.source.key()
	key.Mode = string(p.cfg.Mode)
	if p.cfg.Mode == ModeToken {
		if s, ok := p.source.(staticSource); ok {
			// A static token is handed on as it is: there is nothing to
			// cache and no expiry to tell.
			return &clientauthv1.ExecCredentialStatus{Token: string(s)}, nil
		}
		return p.withEntry(ctx, key, func(ctx context.Context, h *cache.Handle, e *cache.Entry) (*clientauthv1.ExecCredentialStatus, error) {
			return p.tokenCredential(ctx, h, e, callerOf(p.cfg.Caller, req))
		})
	}
	kip, err := p.kipConfig(req)
	if err != nil {
		return nil, err
	}
	key.KipServer = kip.Host
	return p.withEntry(ctx, key, func(ctx context.Context, h *cache.Handle, e *cache.Entry) (*clientauthv1.ExecCredentialStatus, error) {
		return p.certificateCredential(ctx, h, e, kip, callerOf(p.cfg.Caller, req))
	})
}

type entryFunc func(ctx context.Context, h *cache.Handle, e *cache.Entry) (*clientauthv1.ExecCredentialStatus, error)

// withEntry runs f on the cache entry for key, under its lock.
func (p *Plugin) withEntry(ctx context.Context, key cache.Key, f entryFunc) (*clientauthv1.ExecCredentialStatus, error) {
	store := cache.New(p.cfg.CacheDir)
	h, err := store.Lock(ctx, key, func() {
		p.printf("Waiting for another kip login with the same configuration to finish.\n")
	})
	if err != nil {
		return nil, err
	}
	defer func() { _ = h.Unlock() }()
	e, err := h.Load()
	if err != nil {
		if !errors.Is(err, cache.ErrNoEntry) {
			p.printf("Ignoring the cached login: %v\n", err)
		}
		e = cache.Entry{}
	}
	return f(ctx, h, &e)
}

// kipConfig says where kip is: from kubectl's cluster information when the
// kubeconfig provides it (kip's root for a gateway's cluster), else from
// --kip-server.
func (p *Plugin) kipConfig(req execcredential.Request) (*rest.Config, error) {
	if req.Cluster != nil {
		return kipRoot(req.Cluster), nil
	}
	if p.cfg.KipServer == "" {
		return nil, errors.New("kip's address is unknown: set provideClusterInfo: true in the exec section of the kubeconfig, or pass --kip-server")
	}
	return &rest.Config{Host: p.cfg.KipServer, TLSClientConfig: rest.TLSClientConfig{CAData: p.cfg.KipCAData}}, nil
}

func (p *Plugin) printf(format string, args ...any) {
	_, _ = fmt.Fprintf(p.cfg.Stderr, format, args...)
}

// fresh says whether something that expires at exp may still be handed out.
func (p *Plugin) fresh(exp time.Time) bool {
	return p.cfg.Now().Add(p.cfg.ExpiryMargin).Before(exp)
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
