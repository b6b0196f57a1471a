package revocation

import (
	"context"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/kip-proxy/kip/internal/rig/pki"
	"k8s.io/apiserver/pkg/authentication/user"
)

func TestNewEntriesEndRunningRequests(t *testing.T) {
	running := &Running{}
	l := NewList(running)
	l.Set(nil)
	now := time.Now()
	alice := &user.DefaultInfo{Name: "alice", Groups: []string{"dev"}}
	bob := &user.DefaultInfo{Name: "bob", Groups: []string{"ops"}}
	aliceEnd, aliceDone := running.Track(alice, nil)
	defer aliceDone()
	bobEnd, bobDone := running.Track(bob, nil)
	defer bobDone()

	entry := Entry{Kind: KindGroup, Value: "dev", Before: now, Expires: now.Add(time.Hour)}
	k, v := entryJSON(t, entry)
	l.Set(map[string]string{k: v})
	select {
	case <-aliceEnd.Done():
	default:
		t.Fatal("a running request of a revoked group's member was not ended")
	}
	if !errors.Is(context.Cause(aliceEnd), ErrSubjectRevoked) {
		t.Errorf("cause %v, want ErrSubjectRevoked", context.Cause(aliceEnd))
	}
	if bobEnd.Err() != nil {
		t.Fatal("another user's running request was ended")
	}

	// The same entry seen again (a relist) ends nothing new: alice has
	// signed in afresh since.
	again, againDone := running.Track(alice, nil)
	defer againDone()
	l.Set(map[string]string{k: v})
	if again.Err() != nil {
		t.Error("an entry seen again ended a request it had already ended once")
	}
	// Widened to a later time, it ends her requests again.
	entry.Before = now.Add(time.Minute)
	k, v = entryJSON(t, entry)
	l.Set(map[string]string{k: v})
	if again.Err() == nil {
		t.Error("a widened entry did not end the subject's running request")
	}
}

func TestDoneUnregisters(t *testing.T) {
	running := &Running{}
	_, done := running.Track(&user.DefaultInfo{Name: "alice"}, nil)
	done()
	if n := len(running.requests); n != 0 {
		t.Errorf("%d requests still tracked after done", n)
	}
}

// TestUntrustedCAsEndTheirCertificatesRequests: the requests that
// authenticated with a certificate of a CA kip stopped trusting end, with
// ErrCAUntrusted; those of other CAs' certificates, of tokens, and of a
// certificate that merely names the dropped CA as its issuer go on.
func TestUntrustedCAsEndTheirCertificatesRequests(t *testing.T) {
	dropped, kept := pki.NewCAForTest(t, "kip signer", time.Hour), pki.NewCAForTest(t, "kip signer next", time.Hour)
	// The same subject as the dropped CA, another key: a forgery in name.
	lookalike := pki.NewCAForTest(t, "kip signer", time.Hour)
	running := &Running{}
	track := func(name string, ca *pki.CA) context.Context {
		var leaf *x509.Certificate
		if ca != nil {
			leaf = clientCert(t, ca, name)
		}
		end, done := running.Track(&user.DefaultInfo{Name: name}, leaf)
		t.Cleanup(done)
		return end
	}
	alice, alice2 := track("alice", dropped), track("alice", dropped)
	bob, carol, dave := track("bob", kept), track("carol", nil), track("dave", lookalike)

	if n := running.endSignedBy([]*x509.Certificate{dropped.Cert}); n != 2 {
		t.Errorf("ended %d requests, want alice's two", n)
	}
	for _, end := range []context.Context{alice, alice2} {
		if !errors.Is(context.Cause(end), ErrCAUntrusted) {
			t.Errorf("a request of the dropped CA's certificate: cause %v, want ErrCAUntrusted", context.Cause(end))
		}
	}
	for name, end := range map[string]context.Context{"another CA's": bob, "a token's": carol, "a look-alike CA's": dave} {
		if end.Err() != nil {
			t.Errorf("%s request was ended", name)
		}
	}
	if n := running.endSignedBy(nil); n != 0 {
		t.Errorf("no CA dropped ended %d requests", n)
	}
}

func clientCert(t *testing.T, ca *pki.CA, name string) *x509.Certificate {
	t.Helper()
	c, err := ca.ClientCertificate(pki.ClientCertRequest{CommonName: name})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
