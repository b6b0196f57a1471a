package signer

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"
)

// fastElection makes the election take a second instead of seventeen.
func fastElection(identity string) LeaderElection {
	return LeaderElection{Identity: identity, LeaseDuration: 2 * time.Second, RenewDeadline: time.Second, RetryPeriod: 100 * time.Millisecond}
}

// replicaSet is several CAs sharing one fake API server, as kip replicas
// share one Secret and one Lease.
type replicaSet struct {
	t      *testing.T
	client *fake.Clientset
	// secretUpdates counts every write to the Secret.
	secretUpdates atomic.Int32
	// failLease makes every Lease write fail, as an unreachable API
	// server would for one replica.
	failLease atomic.Bool
}

func newReplicaSet(t *testing.T) *replicaSet {
	rs := &replicaSet{t: t, client: fake.NewClientset()}
	rs.client.PrependReactor("update", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		rs.secretUpdates.Add(1)
		return false, nil, nil
	})
	rs.client.PrependReactor("*", "leases", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if rs.failLease.Load() && a.GetVerb() != "get" {
			return true, nil, errors.NewServiceUnavailable("the Lease cannot be written")
		}
		return false, nil, nil
	})
	return rs
}

// start runs a replica until the test ends.
func (rs *replicaSet) start(opts Options) *CA {
	rs.t.Helper()
	ca := newSecretCA(rs.t, rs.client, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); ca.Run(ctx, 1) }()
	rs.t.Cleanup(func() { cancel(); <-done })
	return ca
}

func (rs *replicaSet) holder() string {
	l, err := rs.client.CoordinationV1().Leases(testNamespace).Get(context.Background(), DefaultLeaseName, metav1.GetOptions{})
	if err != nil {
		return ""
	}
	return ptr.Deref(l.Spec.HolderIdentity, "")
}

// leaseExpiry is when the Lease's holder loses it unless it renews.
func (rs *replicaSet) leaseExpiry() time.Time {
	rs.t.Helper()
	l, err := rs.client.CoordinationV1().Leases(testNamespace).Get(context.Background(), DefaultLeaseName, metav1.GetOptions{})
	if err != nil || l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
		rs.t.Fatalf("the Lease has no renew time or duration: %v", err)
	}
	return l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second)
}

func (rs *replicaSet) annotate(key, value string) {
	rs.t.Helper()
	s := getSecret(rs.t, rs.client)
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations[key] = value
	if _, err := rs.client.CoreV1().Secrets(testNamespace).Update(context.Background(), s, metav1.UpdateOptions{}); err != nil {
		rs.t.Fatal(err)
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatal(what)
	}
}

// never fails if cond becomes true within d.
func never(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond() {
			t.Fatal(what)
		}
	}
}

// signerOf identifies the signing CA in s.
func signerOf(t *testing.T, s *corev1.Secret) string {
	t.Helper()
	// The serial, not the name: names carry the time, which a fake clock
	// keeps still.
	return mustParse(t, s.Data[corev1.TLSCertKey]).SerialNumber.String()
}

func TestOnlyTheLeaseHolderRotates(t *testing.T) {
	clk := newClock()
	rs := newReplicaSet(t)
	opts := Options{Clock: clk, CAValidity: 10 * 24 * time.Hour, MaxCertificateTTL: time.Hour}
	first := signerOf(t, func() *corev1.Secret { newSecretCA(t, rs.client, opts); return getSecret(t, rs.client) }())
	clk.Step(9 * 24 * time.Hour) // due: a tenth of the lifetime left
	replicas := map[string]*CA{}
	for _, id := range []string{"kip-a", "kip-b", "kip-c"} {
		o := opts
		o.LeaderElection = fastElection(id)
		replicas[id] = rs.start(o)
	}
	eventually(t, "nobody rotated the due CA", func() bool { return signerOf(t, getSecret(t, rs.client)) != first })
	s := getSecret(t, rs.client)
	if by := s.Annotations[RotatedByAnnotation]; by != rs.holder() || by == "" {
		t.Fatalf("rotated by %q, but the Lease is held by %q", by, rs.holder())
	}
	for id, ca := range replicas {
		eventually(t, id+" did not follow the rotation", func() bool { return ca.state.Load().signing.cert.SerialNumber.String() == signerOf(t, s) })
		if leading := ca.src.(*secretSource).leading.Load(); leading != (id == rs.holder()) {
			t.Errorf("%s leading=%v, Lease holder %s", id, leading, rs.holder())
		}
	}
	never(t, time.Second, "the Secret was written more than once", func() bool { return rs.secretUpdates.Load() != 1 })
}

func TestRotationRequestIsHonouredOnce(t *testing.T) {
	clk := newClock()
	rs := newReplicaSet(t)
	opts := Options{Clock: clk, MaxCertificateTTL: time.Hour, LeaderElection: fastElection("kip-a")}
	a := rs.start(opts)
	before := issue(t, a, "alice")
	eventually(t, "kip-a never took the Lease", func() bool { return a.src.(*secretSource).leading.Load() })
	first := signerOf(t, getSecret(t, rs.client))

	rs.annotate(RotateRequestedAnnotation, "2026-07-01T12:00:00Z")
	eventually(t, "the request was not honoured", func() bool {
		return getSecret(t, rs.client).Annotations[RotateHandledAnnotation] == "2026-07-01T12:00:00Z"
	})
	s := getSecret(t, rs.client)
	second := signerOf(t, s)
	if second == first || s.Annotations[RotatedByAnnotation] != "kip-a" || s.Annotations[RotatedAtAnnotation] != "2026-07-01T12:00:00Z" {
		t.Fatalf("after the request: signer %q (was %q), annotations %v", second, first, s.Annotations)
	}
	eventually(t, "the rotation did not reach memory", func() bool { return a.state.Load().signing.cert.SerialNumber.String() == second })
	if _, ok, err := authenticate(a, before); !ok || err != nil {
		t.Fatalf("a certificate issued before the requested rotation was cut off: %v", err)
	}

	// Other changes to the Secret, and the leader's own write, do not
	// count as a new request.
	rs.annotate("example.com/unrelated", "x")
	never(t, 500*time.Millisecond, "rotated again without a new request", func() bool { return signerOf(t, getSecret(t, rs.client)) != second })

	rs.annotate(RotateRequestedAnnotation, "again")
	eventually(t, "a second request was not honoured", func() bool { return signerOf(t, getSecret(t, rs.client)) != second })
}

// TestLosingTheLeaseStopsRotation: a leader that cannot renew stops
// rotating once its renew deadline passes, and starts again once it holds
// the Lease again.
func TestLosingTheLeaseStopsRotation(t *testing.T) {
	rs := newReplicaSet(t)
	a := rs.start(Options{Clock: newClock(), LeaderElection: fastElection("kip-a")})
	src := a.src.(*secretSource)
	eventually(t, "kip-a never took the Lease", src.leading.Load)

	rs.failLease.Store(true)
	eventually(t, "kip-a kept leading without renewing", func() bool { return !src.leading.Load() })
	// The safety property, not a speed: a replica must stop before its
	// Lease, last renewed just before the failures, expires, as from then
	// on another replica may take it.
	stopped := time.Now()
	if expires := rs.leaseExpiry(); !stopped.Before(expires) {
		t.Errorf("kip-a still led at %s, after its Lease expired at %s: another replica could have led beside it",
			stopped.Format(time.StampMilli), expires.Format(time.StampMilli))
	}
	first := signerOf(t, getSecret(t, rs.client))
	rs.annotate(RotateRequestedAnnotation, "while-not-leading")
	never(t, time.Second, "rotated without the Lease", func() bool { return signerOf(t, getSecret(t, rs.client)) != first })

	rs.failLease.Store(false)
	eventually(t, "the pending request was not honoured after the Lease came back", func() bool {
		return signerOf(t, getSecret(t, rs.client)) != first
	})
}

// TestANewLeaderFinishesAPendingRequest: the leader dies before honouring
// a request (its Lease is simply never renewed again); another replica
// takes over once the Lease expires and honours it.
func TestANewLeaderFinishesAPendingRequest(t *testing.T) {
	rs := newReplicaSet(t)
	// A Lease held by a replica that is gone, renewed just now.
	now := metav1.NewMicroTime(time.Now())
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: DefaultLeaseName},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To("kip-dead"), LeaseDurationSeconds: ptr.To[int32](2), AcquireTime: &now, RenewTime: &now},
	}
	if _, err := rs.client.CoordinationV1().Leases(testNamespace).Create(context.Background(), lease, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	b := rs.start(Options{Clock: newClock(), LeaderElection: fastElection("kip-b")})
	first := signerOf(t, getSecret(t, rs.client))
	rs.annotate(RotateRequestedAnnotation, "r1")
	start := time.Now()
	eventually(t, "kip-b never honoured the dead leader's pending request", func() bool {
		return getSecret(t, rs.client).Annotations[RotateHandledAnnotation] == "r1"
	})
	if took := time.Since(start); took < time.Second {
		t.Errorf("kip-b rotated %v after the request, before the dead leader's Lease expired", took)
	}
	if rs.holder() != "kip-b" || signerOf(t, getSecret(t, rs.client)) == first || !b.src.(*secretSource).leading.Load() {
		t.Fatalf("holder %q, signer changed %v", rs.holder(), signerOf(t, getSecret(t, rs.client)) != first)
	}
}

func TestLeaderElectionOptions(t *testing.T) {
	tests := []struct {
		name    string
		le      LeaderElection
		wantErr string
	}{
		{"defaults", LeaderElection{}, ""},
		{"fast", fastElection("x"), ""},
		{"bad name", LeaderElection{LeaseName: "Not_A_Name"}, "Lease name"},
		{"sub-second lease", LeaderElection{LeaseDuration: 500 * time.Millisecond, RenewDeadline: 200 * time.Millisecond, RetryPeriod: 10 * time.Millisecond}, "at least 1s"},
		{"renew deadline not shorter", LeaderElection{LeaseDuration: 10 * time.Second, RenewDeadline: 10 * time.Second}, "shorter than its duration"},
		{"retry period too long", LeaderElection{LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 9 * time.Second}, "times its retry period"},
		{"negative retry period", LeaderElection{RetryPeriod: -time.Second}, "must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Options{LeaderElection: tt.le}.complete()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got.LeaderElection.LeaseName != DefaultLeaseName || got.LeaderElection.Identity == "" {
					t.Fatalf("defaults not filled in: %+v", got.LeaderElection)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}
