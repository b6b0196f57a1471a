package revocation

import (
	"context"
	"errors"
	"net/http"
	"time"

	"k8s.io/apiserver/pkg/audit"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/klog/v2"

	"github.com/kip-proxy/kip/internal/metrics"
)

// AuditAnnotation names, on the audit event of a refused request, the
// entry that refused it.
const AuditAnnotation = "kip.dev/revoked"

// errRevoked is all a caller learns: the same as for any credential kip
// does not accept, as kube-apiserver says nothing more of a bad token.
var errRevoked = errors.New("invalid credentials")

// Guard refuses the credentials its list revokes, and reports each
// refusal in a log line, an audit annotation and a metric.
type Guard struct {
	list    *List
	metrics *metrics.Revocations
}

// NewGuard guards with list, counting into m (nil counts nothing).
func NewGuard(list *List, m *metrics.Revocations) *Guard {
	return &Guard{list: list, metrics: m}
}

// Certificates wraps an authenticator of client certificates: a user it
// accepts is refused when the list revokes the certificate, whose issue
// time is its NotBefore plus backdate.
func (g *Guard) Certificates(certs authenticator.Request, backdate time.Duration) authenticator.Request {
	if g == nil {
		return certs
	}
	return authenticator.RequestFunc(func(r *http.Request) (*authenticator.Response, bool, error) {
		resp, ok, err := certs.AuthenticateRequest(r)
		if !ok || err != nil || r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			return resp, ok, err
		}
		issued := CertificateIssued(r.TLS.PeerCertificates[0], backdate)
		if err := g.check(r.Context(), resp.User, Credential{Issued: issued}); err != nil {
			return nil, false, err
		}
		return resp, true, nil
	})
}

// Tokens wraps an authenticator of bearer tokens: a user it accepts is
// refused when the list revokes the token, whose issue time is its iat
// claim (unknown for a token that is not a JWT).
func (g *Guard) Tokens(tokens authenticator.Token) authenticator.Token {
	if g == nil {
		return tokens
	}
	return authenticator.TokenFunc(func(ctx context.Context, token string) (*authenticator.Response, bool, error) {
		resp, ok, err := tokens.AuthenticateToken(ctx, token)
		if !ok || err != nil {
			return resp, ok, err
		}
		if err := g.check(ctx, resp.User, Credential{Issued: TokenIssued(token)}); err != nil {
			return nil, false, err
		}
		return resp, true, nil
	})
}

// check returns an error when u's credential c is revoked, or when the
// list has not been read yet.
func (g *Guard) check(ctx context.Context, u user.Info, c Credential) error {
	e, err := g.list.Check(u, c)
	if err != nil {
		klog.V(2).InfoS("Refused a credential: the revocation list has not been read yet", "user", u.GetName())
		return err
	}
	if e == nil {
		return nil
	}
	g.metrics.Refused(string(e.Kind))
	audit.AddAuditAnnotation(ctx, AuditAnnotation, e.Key())
	klog.InfoS("Refused a revoked credential", "user", u.GetName(), "uid", u.GetUID(),
		"entry", e.Key(), "kind", e.Kind, "value", e.Value, "before", e.Before, "issued", c.Issued, "reason", e.Reason)
	return errRevoked
}

// Ready fails until the list has been read once: until then every
// credential it could cover is refused.
func (g *Guard) Ready(*http.Request) error {
	if g.list.Loaded() {
		return nil
	}
	return errors.New("the revocation list has not been read yet, so kip refuses every credential it vouches for")
}
