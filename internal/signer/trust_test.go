package signer

import (
	"testing"
	"time"
)

func TestRetireWindow(t *testing.T) {
	now := start
	tests := []struct {
		name     string
		validity time.Duration
		maxTTL   time.Duration
		want     time.Time
	}{
		{"longest certificate plus grace", 30 * 24 * time.Hour, 24 * time.Hour, now.Add(24*time.Hour + propagationGrace)},
		{"capped by the old CA's expiry", 3 * time.Hour, 24 * time.Hour, now.Add(3 * time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := mustSigner(t, now, tt.validity)
			if got := retire(old, now, tt.maxTTL).trustUntil; !got.Equal(tt.want) {
				t.Fatalf("trust until %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTrustSnapshot(t *testing.T) {
	now := start
	a, b, c := mustSigner(t, now, 48*time.Hour), mustSigner(t, now, 48*time.Hour), mustSigner(t, now, 48*time.Hour)
	t1 := newTrust(a, nil, now)
	t2 := t1.withSigning(b, now, time.Hour)
	if t1.withSigning(a, now, time.Hour).nextExpiry() != (time.Time{}) {
		t.Fatal("switching to the same CA retired it")
	}
	if len(t2.retired) != 1 || !t2.retired[0].cert.Equal(a.cert) {
		t.Fatal("the previous CA was not retired")
	}
	// Switching back to a retired CA makes it the signer, not both.
	t3 := t2.withSigning(c, now.Add(time.Minute), time.Hour).withSigning(a, now.Add(2*time.Minute), time.Hour)
	if !t3.signing.cert.Equal(a.cert) || len(t3.retired) != 2 {
		t.Fatalf("retired %d, want b and c", len(t3.retired))
	}
	if got := t3.pruned(now.Add(3 * time.Hour)); len(got.retired) != 0 {
		t.Fatal("windows that ended were kept")
	}
	if !t3.dueForRotation(now.Add(40*time.Hour)) || t3.dueForRotation(now.Add(30*time.Hour)) {
		t.Fatal("rotation is due when less than a fifth of the lifetime is left")
	}
}
