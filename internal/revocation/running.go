package revocation

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"sync"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/klog/v2"
)

// Why Running ended a request: the context.Cause of its end.
var (
	// ErrSubjectRevoked: an entry of the list came to cover the caller.
	ErrSubjectRevoked = errors.New("the revocation list covers the caller")
	// ErrCAUntrusted: kip stopped trusting the CA that signed the
	// certificate the caller authenticated with.
	ErrCAUntrusted = errors.New("kip no longer trusts the CA of the caller's certificate")
)

// Running are the long-running requests in flight (watches, logs -f,
// exec, attach, port-forward), each with the user it authenticated as and
// the certificate it authenticated with, if any. Each began before the
// replica saw what ends it, so with a credential that is no longer
// accepted, and a request already past authentication would otherwise run
// on for as long as the client keeps it open. Its requests end when an
// entry of the list arrives or widens for their subject, and when the CA
// that signed their certificate is no longer trusted.
type Running struct {
	mu       sync.Mutex
	requests map[*runningRequest]struct{}
}

type runningRequest struct {
	user user.Info
	// leaf is the client certificate the request authenticated with; nil
	// for a token.
	leaf *x509.Certificate
	end  context.CancelCauseFunc
}

// Track registers a request of u, which authenticated with the client
// certificate leaf (nil: with a token). end is done when something ends
// the request, its cause ErrSubjectRevoked or ErrCAUntrusted; done
// unregisters it and must be called when it finishes.
func (r *Running) Track(u user.Info, leaf *x509.Certificate) (end context.Context, done func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	req := &runningRequest{user: u, leaf: leaf, end: cancel}
	r.mu.Lock()
	if r.requests == nil {
		r.requests = map[*runningRequest]struct{}{}
	}
	r.requests[req] = struct{}{}
	r.mu.Unlock()
	return ctx, func() {
		r.mu.Lock()
		delete(r.requests, req)
		r.mu.Unlock()
		cancel(nil)
	}
}

// end ends every running request of a subject that entries name, and
// returns how many.
func (r *Running) end(entries []Entry) int {
	if r == nil || len(entries) == 0 {
		return 0
	}
	ix := &index{byKind: map[Kind]map[string]Entry{}}
	for _, e := range entries {
		ix.add(e)
	}
	return r.endWhere(ErrSubjectRevoked, func(req *runningRequest) bool {
		e := ix.match(req.user, Credential{})
		if e != nil {
			klog.InfoS("Ending a running request of a revoked subject", "user", req.user.GetName(), "entry", e.Key(), "kind", e.Kind, "value", e.Value)
		}
		return e != nil
	})
}

// endSignedBy ends every running request whose certificate one of cas
// signed, kip having stopped trusting them, and returns how many. The
// certificate may well have expired by then: a request outlives its
// credential, but not the trust in its issuer.
func (r *Running) endSignedBy(cas []*x509.Certificate) int {
	if len(cas) == 0 {
		return 0
	}
	return r.endWhere(ErrCAUntrusted, func(req *runningRequest) bool {
		ca := signerOf(req.leaf, cas)
		if ca != nil {
			klog.InfoS("Ending a running request whose certificate's CA kip no longer trusts", "user", req.user.GetName(),
				"serial", req.leaf.SerialNumber, "ca", ca.Subject.String(), "caSerial", ca.SerialNumber)
		}
		return ca != nil
	})
}

// signerOf returns the CA of cas whose key signed leaf, or nil.
func signerOf(leaf *x509.Certificate, cas []*x509.Certificate) *x509.Certificate {
	if leaf == nil {
		return nil
	}
	for _, ca := range cas {
		if bytes.Equal(leaf.RawIssuer, ca.RawSubject) && leaf.CheckSignatureFrom(ca) == nil {
			return ca
		}
	}
	return nil
}

// endWhere ends, for cause, every running request that matches, and
// returns how many.
func (r *Running) endWhere(cause error, matches func(*runningRequest) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for req := range r.requests {
		if matches(req) {
			req.end(cause)
			delete(r.requests, req)
			n++
		}
	}
	return n
}
