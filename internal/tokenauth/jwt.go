package tokenauth

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	authenticationcel "k8s.io/apiserver/pkg/authentication/cel"
	tokenunion "k8s.io/apiserver/pkg/authentication/token/union"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/apiserver/plugin/pkg/authenticator/token/oidc"
	"k8s.io/klog/v2"

	"github.com/kip-proxy/kip/internal/metrics"
)

// signingAlgs are the asymmetric algorithms an ID token may be signed
// with. "none" and the HMAC algorithms are never accepted: a shared secret
// would let anyone who knows it mint tokens.
func signingAlgs() []string {
	return []string{"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"}
}

// jwtSet is the authenticators built from one configuration, and how to
// stop their background JWKS refreshes.
type jwtSet struct {
	tokens      authenticator.Token
	healthCheck func() error
	cancel      context.CancelFunc
	digest      [32]byte
}

// buildJWTSet builds one k8s.io/apiserver OIDC authenticator per issuer.
// They discover their issuer and fetch its keys in the background, and
// refresh the keys when a token names one they do not know.
func buildJWTSet(parent context.Context, cfg *authenticationConfig, compiler authenticationcel.Compiler) (*jwtSet, error) {
	ctx, cancel := context.WithCancel(parent)
	var (
		tokens []authenticator.Token
		checks []func() error
	)
	for _, jwt := range cfg.config.JWT {
		opts := oidc.Options{JWTAuthenticator: jwt, SupportedSigningAlgs: signingAlgs(), Compiler: compiler}
		if ca := jwt.Issuer.CertificateAuthority; ca != "" {
			content, err := dynamiccertificates.NewStaticCAContent("oidc-issuer-ca", []byte(ca))
			if err != nil {
				cancel()
				return nil, fmt.Errorf("issuer %s: certificateAuthority: %w", jwt.Issuer.URL, err)
			}
			opts.CAContentProvider = content
		}
		a, err := oidc.New(ctx, opts)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("issuer %s: %w", jwt.Issuer.URL, err)
		}
		tokens, checks = append(tokens, a), append(checks, a.HealthCheck)
	}
	return &jwtSet{
		// An authenticator that recognises the token's issuer but rejects
		// the token ends the search: the token must not go on to be
		// offered to anyone else.
		tokens:      tokenunion.NewFailOnError(tokens...),
		healthCheck: joinChecks(checks),
		cancel:      cancel,
		digest:      cfg.digest,
	}, nil
}

func joinChecks(checks []func() error) func() error {
	return func() error {
		var errs []error
		for _, check := range checks {
			if err := check(); err != nil {
				errs = append(errs, err)
			}
		}
		return utilerrors.NewAggregate(errs)
	}
}

// jwtAuthenticator serves tokens from the current configuration and swaps
// in a new one when the file changes.
type jwtAuthenticator struct {
	path     string
	compiler authenticationcel.Compiler
	current  atomic.Pointer[jwtSet]
	// healthyWithin bounds how long a reloaded configuration may take to
	// reach its issuers before it is given up and the old one kept.
	healthyWithin time.Duration
	// retire stops an old configuration's refreshes once requests that
	// may still use it are done.
	retireAfter time.Duration
	mu          sync.Mutex // serializes reloads
}

func newJWTAuthenticator(ctx context.Context, path string, healthyWithin, retireAfter time.Duration) (*jwtAuthenticator, error) {
	compiler := authenticationcel.NewDefaultCompiler()
	cfg, err := loadAuthenticationConfig(path, compiler)
	if err != nil {
		return nil, err
	}
	set, err := buildJWTSet(ctx, cfg, compiler)
	if err != nil {
		return nil, fmt.Errorf("authentication configuration %s: %w", path, err)
	}
	j := &jwtAuthenticator{path: path, compiler: compiler, healthyWithin: healthyWithin, retireAfter: retireAfter}
	j.current.Store(set)
	return j, nil
}

func (j *jwtAuthenticator) AuthenticateToken(ctx context.Context, token string) (*authenticator.Response, bool, error) {
	return j.current.Load().tokens.AuthenticateToken(ctx, token)
}

// HealthCheck fails until every issuer's discovery document and keys have
// been fetched, naming the issuers that are not ready.
func (j *jwtAuthenticator) HealthCheck() error { return j.current.Load().healthCheck() }

// reload applies the file if it changed. A file that does not load, or
// whose issuers cannot be reached in time, leaves the last good
// configuration in place; the error says why.
func (j *jwtAuthenticator) reload(ctx context.Context) (changed bool, err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	cfg, err := loadAuthenticationConfig(j.path, j.compiler)
	if err != nil {
		return false, err
	}
	old := j.current.Load()
	if cfg.digest == old.digest {
		return false, nil
	}
	set, err := buildJWTSet(ctx, cfg, j.compiler)
	if err != nil {
		return false, err
	}
	var lastErr error
	waitErr := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, j.healthyWithin, true, func(context.Context) (bool, error) {
		lastErr = set.healthCheck()
		return lastErr == nil, nil
	})
	if waitErr != nil {
		set.cancel()
		return false, fmt.Errorf("the new configuration's issuers are not ready (%v): %w", lastErr, waitErr)
	}
	j.current.Store(set)
	go retire(ctx, old, j.retireAfter)
	return true, nil
}

// retire stops an old configuration's key refreshes after requests that
// picked it up before the swap have had time to finish.
func retire(ctx context.Context, old *jwtSet, after time.Duration) {
	t := time.NewTimer(after)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	old.cancel()
}

// watch reloads the file every interval until ctx ends, and records each
// outcome in rec. Polling the content, rather than watching inotify
// events, also catches the symlink swaps with which Kubernetes updates a
// mounted ConfigMap.
func (j *jwtAuthenticator) watch(ctx context.Context, interval time.Duration, rec *metrics.Recorder) {
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		changed, err := j.reload(ctx)
		if changed || err != nil {
			rec.ConfigReloaded(metrics.ConfigAuthentication, err)
		} else {
			rec.ConfigInSync(metrics.ConfigAuthentication)
		}
		switch {
		case err != nil:
			klog.ErrorS(err, "Keeping the last good authentication configuration", "path", j.path)
		case changed:
			klog.InfoS("Loaded a new authentication configuration", "path", j.path)
		}
	}, interval)
}
