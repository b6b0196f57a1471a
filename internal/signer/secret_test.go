package signer

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

const (
	testNamespace = "kip-system"
	testSecret    = "kip-signer-ca"
)

var secretsResource = schema.GroupResource{Resource: "secrets"}

func getSecret(t *testing.T, client *fake.Clientset) *corev1.Secret {
	t.Helper()
	s, err := client.CoreV1().Secrets(testNamespace).Get(context.Background(), testSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newSecretCA(t *testing.T, client *fake.Clientset, opts Options) *CA {
	t.Helper()
	ca, err := NewFromSecret(context.Background(), client, testNamespace, testSecret, opts)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func secretWith(t *testing.T, signing *signingCA, retired ...retiredCA) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: testSecret}}
	if err := writeSecret(s, newTrust(signing, retired, start)); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNewFromSecretCreatesTheCAWhenAbsent(t *testing.T) {
	clk := newClock()
	client := fake.NewClientset()
	ca := newSecretCA(t, client, Options{Clock: clk})
	s := getSecret(t, client)
	if s.Type != corev1.SecretTypeTLS || s.Labels[managedByLabel] != managedByValue {
		t.Fatalf("type %q labels %v", s.Type, s.Labels)
	}
	if _, ok := s.Data[secretRetiredKey]; ok {
		t.Fatal("a fresh Secret lists retired CAs")
	}
	signer := ca.state.Load().signing.cert
	if string(s.Data[corev1.TLSCertKey]) != string(ca.CurrentCABundleContent()) {
		t.Fatal("the CA in memory is not the one in the Secret")
	}
	if !strings.HasPrefix(signer.Subject.CommonName, "kip signer CA 2026-07-01") || !signer.NotAfter.Equal(start.Add(defaultCAValidity)) {
		t.Fatalf("generated CA %q valid until %v", signer.Subject.CommonName, signer.NotAfter)
	}
	// A second replica finds it and uses the same CA.
	again := newSecretCA(t, client, Options{Clock: clk})
	if !again.state.Load().signing.cert.Equal(signer) {
		t.Fatal("the second replica uses another CA")
	}
}

func TestNewFromSecretLosesTheCreateRace(t *testing.T) {
	clk := newClock()
	winner := secretWith(t, mustSigner(t, clk.Now(), 24*time.Hour))
	client := fake.NewClientset()
	// The other replica creates the Secret between our Get and Create.
	client.PrependReactor("create", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		if err := client.Tracker().Add(winner); err != nil {
			t.Error(err)
		}
		return true, nil, apierrors.NewAlreadyExists(secretsResource, testSecret)
	})
	ca := newSecretCA(t, client, Options{Clock: clk})
	if string(ca.CurrentCABundleContent()) != string(winner.Data[corev1.TLSCertKey]) {
		t.Fatal("the replica that lost the race does not use the winner's CA")
	}
}

func TestNewFromSecretRefusesAnUnusableSecret(t *testing.T) {
	clk := newClock()
	good := secretWith(t, mustSigner(t, clk.Now(), 24*time.Hour))
	other := mustSigner(t, clk.Now(), 24*time.Hour)
	leaf := issue(t, staticCA(t, clk, Options{}), "alice")
	tests := []struct {
		name    string
		mutate  func(s *corev1.Secret)
		wantErr string
	}{
		{"wrong type", func(s *corev1.Secret) { s.Type = corev1.SecretTypeOpaque }, "type"},
		{"key of another CA", func(s *corev1.Secret) { s.Data[corev1.TLSPrivateKeyKey] = other.keyPEM }, "do not form a pair"},
		{"no certificate", func(s *corev1.Secret) { delete(s.Data, corev1.TLSCertKey) }, "do not form a pair"},
		{"retired list not JSON", func(s *corev1.Secret) { s.Data[secretRetiredKey] = []byte("{") }, "retired-cas.json"},
		{"retired entry not a certificate", func(s *corev1.Secret) {
			s.Data[secretRetiredKey] = []byte(`[{"certificate":"x","trustUntil":"2030-01-01T00:00:00Z"}]`)
		}, "retired CA #0"},
		{"retired entry not a CA", func(s *corev1.Secret) {
			s.Data[secretRetiredKey], _ = json.Marshal([]retiredRecord{{Certificate: string(encodeCertPEM(leaf.Raw)), TrustUntil: start.Add(time.Hour)}})
		}, "not a CA"},
		{"retired entry without window", func(s *corev1.Secret) {
			s.Data[secretRetiredKey], _ = json.Marshal([]retiredRecord{{Certificate: string(other.certPEM)}})
		}, "no trustUntil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := good.DeepCopy()
			tt.mutate(bad)
			client := fake.NewClientset(bad)
			_, err := NewFromSecret(context.Background(), client, testNamespace, testSecret, Options{Clock: clk})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "fix or delete it") {
				t.Fatalf("error %v, want one mentioning %q", err, tt.wantErr)
			}
			// kip never overwrites a Secret it cannot read.
			if got := getSecret(t, client); string(got.Data[corev1.TLSCertKey]) != string(bad.Data[corev1.TLSCertKey]) {
				t.Fatal("the Secret was overwritten")
			}
		})
	}
}

func TestRestartAfterRotationStillTrustsTheRetiredCA(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	client := fake.NewClientset()
	opts := Options{Clock: clk, MaxCertificateTTL: 8 * time.Hour}
	ca := newSecretCA(t, client, opts)
	oldSigner := ca.state.Load().signing.cert
	oldCert := issue(t, ca, "alice")
	listener := &countingListener{}
	ca.AddListener(listener)

	if err := ca.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if listener.n.Load() != 1 || ca.state.Load().signing.cert.Equal(oldSigner) {
		t.Fatal("Rotate did not switch the signer or tell the listeners")
	}
	var records []retiredRecord
	if err := json.Unmarshal(getSecret(t, client).Data[secretRetiredKey], &records); err != nil || len(records) != 1 {
		t.Fatalf("retired records %v: %v", records, err)
	}
	if want := clk.Now().Add(8*time.Hour + propagationGrace); !records[0].TrustUntil.Equal(want) {
		t.Fatalf("trust until %v, want %v", records[0].TrustUntil, want)
	}

	restarted := newSecretCA(t, client, opts)
	if _, ok, err := authenticate(restarted, oldCert); !ok || err != nil {
		t.Fatalf("a restarted replica refuses a certificate of the retired CA: %v", err)
	}
	if _, ok, err := authenticate(restarted, issue(t, restarted, "bob")); !ok || err != nil {
		t.Fatalf("a restarted replica refuses a certificate of the new CA: %v", err)
	}

	// The next write drops retired CAs whose window has ended.
	clk.Step(8*time.Hour + propagationGrace)
	if err := restarted.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	records = nil
	_ = json.Unmarshal(getSecret(t, client).Data[secretRetiredKey], &records)
	if len(records) != 1 || trusts(t, restarted, oldSigner) {
		t.Fatalf("after the window: %d retired records, want only the one just retired", len(records))
	}
}

func TestRotateRetriesOnConflict(t *testing.T) {
	clk := newClock()
	client := fake.NewClientset()
	ca := newSecretCA(t, client, Options{Clock: clk})
	var updates atomic.Int32
	client.PrependReactor("update", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		if updates.Add(1) == 1 {
			return true, nil, apierrors.NewConflict(secretsResource, testSecret, nil)
		}
		return false, nil, nil
	})
	if err := ca.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if updates.Load() != 2 || len(ca.state.Load().retired) != 1 {
		t.Fatalf("%d updates, %d retired; want a retry and one retired CA", updates.Load(), len(ca.state.Load().retired))
	}
}

// TestAutomaticRotation drives the check the Lease holder runs (lead.go):
// rotate when less than a fifth of the lifetime is left, and adopt a
// rotation another replica already made instead of rotating again.
func TestAutomaticRotation(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	client := fake.NewClientset()
	opts := Options{Clock: clk, CAValidity: 10 * 24 * time.Hour, MaxCertificateTTL: time.Hour}
	a := newSecretCA(t, client, opts)
	b := newSecretCA(t, client, opts) // a former leader that missed the rotation
	first := a.state.Load().signing.cert

	clk.Step(7 * 24 * time.Hour)
	if err := a.src.rotate(ctx, true); err != nil {
		t.Fatal(err)
	}
	if !a.state.Load().signing.cert.Equal(first) {
		t.Fatal("rotated with 30 % of the lifetime left")
	}
	clk.Step(2 * 24 * time.Hour)
	// RunOnce, which every replica runs at start, only reads: rotating is
	// the Lease holder's job.
	if err := a.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if !a.state.Load().signing.cert.Equal(first) {
		t.Fatal("RunOnce rotated without holding the Lease")
	}
	if err := a.src.rotate(ctx, true); err != nil {
		t.Fatal(err)
	}
	second := a.state.Load().signing.cert
	if second.Equal(first) || !trusts(t, a, first) {
		t.Fatal("no rotation with 10 % of the lifetime left, or the old CA was dropped")
	}
	// b still holds the old state; its check finds the rotation done and
	// adopts it instead of rotating again.
	if err := b.src.rotate(ctx, true); err != nil {
		t.Fatal(err)
	}
	if !b.state.Load().signing.cert.Equal(second) || len(b.state.Load().retired) != 1 {
		t.Fatal("the second replica rotated again instead of adopting the rotation")
	}
}

func TestSecretWatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clk := newClock()
	client := fake.NewClientset()
	a := newSecretCA(t, client, Options{Clock: clk})
	b := newSecretCA(t, client, Options{Clock: clk})
	listener := &countingListener{}
	b.AddListener(listener)
	go b.Run(ctx, 1)
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) { return cond(), nil })
		if err != nil {
			t.Fatal(what)
		}
	}

	if err := a.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	rotated := a.state.Load().signing.cert
	waitFor("the watching replica did not see the rotation", func() bool {
		return b.state.Load().signing.cert.Equal(rotated) && listener.n.Load() > 0
	})

	// A damaged Secret keeps the last good CA.
	bad := getSecret(t, client)
	bad.Data[corev1.TLSPrivateKeyKey] = []byte("garbage")
	if _, err := client.CoreV1().Secrets(testNamespace).Update(ctx, bad, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := a.Rotate(ctx); err == nil {
		t.Fatal("rotated over a Secret it cannot read")
	}
	time.Sleep(200 * time.Millisecond)
	if !b.state.Load().signing.cert.Equal(rotated) {
		t.Fatal("a damaged Secret replaced the CA")
	}
}
