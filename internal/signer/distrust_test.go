package signer

import (
	"context"
	"crypto/x509"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes/fake"
)

// TestDistrustDropsEveryOldCA: after an ordinary rotation, one CA signs and
// one is retired. A distrust request replaces both with a fresh CA in one
// write, so a replica that reads the Secret refuses every certificate
// issued before, while new ones work; the request is honoured once, and
// RequestDistrust reports what it did.
func TestDistrustDropsEveryOldCA(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	clk := newClock()
	client := fake.NewClientset()
	opts := Options{Clock: clk, MaxCertificateTTL: 8 * time.Hour}
	leader := newSecretCA(t, client, opts)
	fromRetired := issue(t, leader, "alice")
	if err := leader.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	fromSigning := issue(t, leader, "bob")

	// The leader's loop: it rotates when asked, as lead.go's does.
	go func() {
		for ctx.Err() == nil {
			_ = leader.src.rotate(ctx, true)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	got, err := RequestDistrust(ctx, client, testNamespace, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Old) != 2 || got.New == nil || got.New.Equal(got.Old[0]) || got.New.Equal(got.Old[1]) {
		t.Fatalf("distrusted %d old CAs for new %v, want the signing and the retired one for a fresh one", len(got.Old), got.New)
	}

	secret := getSecret(t, client)
	if _, ok := secret.Data[secretRetiredKey]; ok {
		t.Errorf("the Secret still lists retired CAs: %s", secret.Data[secretRetiredKey])
	}
	if secret.Annotations[DistrustHandledAnnotation] != got.Request {
		t.Errorf("handled %q, want %q", secret.Annotations[DistrustHandledAnnotation], got.Request)
	}
	follower := newSecretCA(t, client, opts)
	for name, cert := range map[string]*x509.Certificate{"retired CA's": fromRetired, "last signing CA's": fromSigning} {
		if _, ok, _ := authenticate(follower, cert); ok {
			t.Errorf("a replica still accepts a certificate of the %s", name)
		}
	}
	if _, ok, err := authenticate(follower, issue(t, follower, "carol")); !ok || err != nil {
		t.Errorf("a replica refuses a certificate of the new CA: %v", err)
	}

	// Honoured once: the leader's next pass leaves the new CA alone.
	time.Sleep(100 * time.Millisecond)
	if now := getSecret(t, client); !now.CreationTimestamp.Equal(&secret.CreationTimestamp) || string(now.Data["tls.crt"]) != string(secret.Data["tls.crt"]) {
		t.Error("the leader rotated again for a request it had honoured")
	}
}
