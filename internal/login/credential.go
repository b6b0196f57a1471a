package login

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientauthv1 "k8s.io/client-go/pkg/apis/clientauthentication/v1"
	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/internal/login/cache"
	"github.com/kip-proxy/kip/internal/login/exchange"
	"github.com/kip-proxy/kip/internal/login/execcredential"
)

// tokenCredential hands an ID token to kubectl, the caller.
func (p *Plugin) tokenCredential(ctx context.Context, h *cache.Handle, e *cache.Entry, caller string) (*clientauthv1.ExecCredentialStatus, error) {
	again := askedAgain(e, caller)
	if again {
		p.printf("This process was given the cached ID token before and asks again, so it was refused; getting a new one.\n")
	}
	tok, exp, cached, err := p.source.token(ctx, p, e, !again)
	if err != nil {
		return nil, err
	}
	if err := hand(h, e, caller, !cached); err != nil {
		return nil, err
	}
	return &clientauthv1.ExecCredentialStatus{Token: tok, ExpirationTimestamp: timestamp(exp)}, nil
}

// askedAgain reports whether the caller that runs kip login now, one
// process asking for one cluster, was handed the cached credential
// already. client-go asks its exec plugin again within one process, for
// one cluster, only when the credential expired or the server refused it
// with 401; an unexpired one was refused, so kip login gets a new one
// rather than hand the refused one back until it expires. That happens
// after a revocation whose time has passed, a signer CA kip no longer
// trusts, or a restart of a file-mode signer. A caller that asks twice for
// another reason costs one extra exchange. An unknown caller is "".
func askedAgain(e *cache.Entry, caller string) bool {
	return caller != "" && e.HandedTo == caller
}

// hand records that the entry's credential goes to caller, and saves the
// entry when that or, with changed, anything else in it is new: a cache
// hit for a caller whose recipient is already recorded writes nothing.
func hand(h *cache.Handle, e *cache.Entry, caller string, changed bool) error {
	if !changed && e.HandedTo == caller {
		return nil
	}
	e.HandedTo = caller
	return h.Save(*e)
}

// callerOf names who asks: the process, and the cluster its request is
// for (kubectl's clusters of one gateway share a cache entry, and one
// process may use several); "" when the process is unknown.
func callerOf(pid int, req execcredential.Request) string {
	if pid == 0 {
		return ""
	}
	caller := fmt.Sprintf("pid %d", pid)
	if req.Cluster != nil {
		caller += " for " + req.Cluster.Host
	}
	return caller
}

// certificateCredential hands a kip client certificate to kubectl: the
// cached one while it is fresh, else a new one for a new key.
func (p *Plugin) certificateCredential(ctx context.Context, h *cache.Handle, e *cache.Entry, kip *rest.Config, caller string) (*clientauthv1.ExecCredentialStatus, error) {
	status, err := p.certificateStatus(e, p.cfg.ExpiryMargin)
	if err == nil && askedAgain(e, caller) {
		err = errRefused
	}
	if err == nil {
		return status, hand(h, e, caller, false)
	}
	if e.Certificate != "" && !errors.Is(err, errExpiring) {
		p.printf("Not reusing the cached certificate: %v\n", err)
	}
	e.Certificate, e.PrivateKey = "", ""
	client, err := exchange.New(kip)
	if err != nil {
		return nil, err
	}
	if p.cfg.MaxRetryWait > 0 {
		client.SetMaxRetryWait(p.cfg.MaxRetryWait)
	}
	status, err = p.exchangeOnce(ctx, client, e, true)
	if errors.Is(err, errRetryFresh) {
		p.printf("kip did not accept the cached token; getting a new one.\n")
		status, err = p.exchangeOnce(ctx, client, e, false)
	}
	if err != nil {
		caller = ""
	}
	if saveErr := hand(h, e, caller, true); saveErr != nil && err == nil {
		err = saveErr
	}
	return status, err
}

// errExpiring means a cached certificate is too close to its expiry.
var errExpiring = errors.New("the certificate expires soon")

// errRefused means the process asking was given the cached certificate
// already, and kip refused it.
var errRefused = errors.New("this process was given it before and asks again, so kip refused it")

// errRetryFresh asks for one more try with a token that is not cached.
var errRetryFresh = errors.New("retry with a fresh token")

// exchangeOnce obtains a token and exchanges it. Whatever it learns is
// recorded in e: a token kip rejected is dropped so that no later run
// tries it again.
func (p *Plugin) exchangeOnce(ctx context.Context, client *exchange.Client, e *cache.Entry, allowCached bool) (*clientauthv1.ExecCredentialStatus, error) {
	tok, _, cached, err := p.source.token(ctx, p, e, allowCached)
	if err != nil {
		return nil, err
	}
	kc, err := exchange.NewKeyAndCSR()
	if err != nil {
		return nil, err
	}
	cred, err := client.Exchange(ctx, tok, kc.CSRPEM)
	if errors.Is(err, exchange.ErrAuthenticationFailed) {
		e.IDToken = ""
		if cached {
			return nil, errRetryFresh
		}
		return nil, fmt.Errorf("kip at %s did not accept the token: %w", client.Host(), err)
	}
	if err != nil {
		return nil, err
	}
	e.Certificate, e.PrivateKey = cred.ClientCertificateData, string(kc.KeyPEM)
	// A new certificate is handed out even if it is shorter-lived than the
	// reuse margin; it is valid now.
	status, err := p.certificateStatus(e, 0)
	if err != nil {
		e.Certificate, e.PrivateKey = "", ""
		return nil, fmt.Errorf("kip returned an unusable certificate: %w", err)
	}
	return status, nil
}

// certificateStatus returns e's certificate if it belongs to e's key and is
// valid for longer than margin. The certificate itself is the source of its
// expiry, not anything else in the file.
func (p *Plugin) certificateStatus(e *cache.Entry, margin time.Duration) (*clientauthv1.ExecCredentialStatus, error) {
	if e.Certificate == "" || e.PrivateKey == "" {
		return nil, errors.New("none cached")
	}
	pair, err := tls.X509KeyPair([]byte(e.Certificate), []byte(e.PrivateKey))
	if err != nil {
		return nil, fmt.Errorf("the certificate does not match its key: %w", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, err
	}
	if !p.cfg.Now().Add(margin).Before(leaf.NotAfter) {
		return nil, fmt.Errorf("%w (%s)", errExpiring, leaf.NotAfter.Format(time.RFC3339))
	}
	return &clientauthv1.ExecCredentialStatus{
		ClientCertificateData: e.Certificate,
		ClientKeyData:         e.PrivateKey,
		ExpirationTimestamp:   timestamp(leaf.NotAfter),
	}, nil
}

func timestamp(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	mt := metav1.NewTime(t)
	return &mt
}
