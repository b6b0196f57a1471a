package identity

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	loginv1alpha1 "github.com/kip-proxy/kip/pkg/apis/login/v1alpha1"

	"github.com/kip-proxy/kip/internal/rig/harness"
	"github.com/kip-proxy/kip/internal/signer"
)

// fastLease lets a replica take over a dead leader's Lease in about five
// seconds instead of seventeen; the rules are the defaults' in miniature.
func fastLease(int) []string {
	return []string{"--signer-ca-lease-duration=4s", "--signer-ca-lease-renew-deadline=3s", "--signer-ca-lease-retry-period=500ms"}
}

// TestReplicasSurviveTheLeaderDyingDuringRotation: three kip replicas
// share one signer CA Secret; a client alternates between them. A
// certificate issued by one replica works on all. Then an operator asks for
// a rotation and the leader, the only replica that rotates, is killed at
// once (SIGKILL, so it neither finishes nor hands over the Lease). No
// request is lost, the certificate issued before the rotation keeps
// working, another replica takes the Lease, and the rotation completes:
// every survivor signs with the new CA.
//
// What counts as lost: any request answered with an error, and any request
// a surviving replica failed. A request to the killed replica that failed
// at the connection (refused, reset, cut off mid-answer) is what a load
// balancer retries on another backend; the client does the same, once, and
// stops sending to that replica, as a load balancer's health check would.
// Such a request is lost only if its retry fails.
func TestReplicasSurviveTheLeaderDyingDuringRotation(t *testing.T) {
	ns := createNamespace(t)
	applyDeployedRole(t, ns, signerSecret)
	replicas := startReplicas(t, ns, 3, fastLease)
	oldCA := parseCert(t, string(getSecret(t, ns).Data[corev1.TLSCertKey]))

	name := harness.UniqueName("alternating")
	want := idpUser(name)
	token := idToken(t, clientID, person(name))
	var before *loginv1alpha1.ClusterCredential
	for _, issuer := range replicas {
		cred := mustExchangeAt(t, issuer.config, token, nil)
		if err := parseCert(t, cred.ClientCertificateData).CheckSignatureFrom(oldCA); err != nil {
			t.Fatalf("replica %d signs with a CA other than the Secret's: %v", issuer.index, err)
		}
		for _, verifier := range replicas {
			got, err := whoami(t, withCert(verifier.config, cred))
			if err != nil {
				t.Fatalf("a certificate from replica %d at replica %d: %v", issuer.index, verifier.index, err)
			}
			checkIdentity(t, got, want)
		}
		before = cred
	}

	leader := waitForLeader(t, ns, replicas, "")
	survivors := without(replicas, leader)
	t.Logf("replica %d (%s) holds the Lease", leader.index, leader.identity)

	// The alternating client uses the certificate issued before the
	// rotation from start to end: it must never be cut off.
	client := startAlternatingClient(t, replicas, before, want.Username)
	time.Sleep(time.Second)

	requested := time.Now().UTC().Format(time.RFC3339Nano)
	requestRotation(t, ns, requested)
	client.killed(leader) // first, so no failure of the dying replica is missed
	if err := syscall.Kill(leader.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	<-leader.Exited()

	next := waitForLeader(t, ns, survivors, leader.identity)
	tookOver := time.Since(killed)
	t.Logf("replica %d (%s) took the Lease %v after the leader was killed", next.index, next.identity, tookOver.Round(10*time.Millisecond))

	var secret *corev1.Secret
	eventually(t, time.Minute, "the requested rotation never completed", func() bool {
		secret = getSecret(t, ns)
		return secret.Annotations[signer.RotateHandledAnnotation] == requested
	})
	newCA := parseCert(t, string(secret.Data[corev1.TLSCertKey]))
	if newCA.Equal(oldCA) {
		t.Fatal("the rotation was marked done but the Secret holds the old CA")
	}
	switch by := secret.Annotations[signer.RotatedByAnnotation]; by {
	case leader.identity:
		t.Logf("the killed leader wrote the rotation before it died; the new leader found nothing left to do")
	case next.identity:
		t.Logf("the killed leader died before writing the rotation; the new leader honoured the pending request")
	default:
		t.Errorf("the rotation was written by %q, neither the killed leader nor its successor", by)
	}

	// Every survivor now signs with the new CA, and its certificates work
	// on every survivor.
	for _, issuer := range survivors {
		var cred *loginv1alpha1.ClusterCredential
		eventually(t, 30*time.Second, fmt.Sprintf("replica %d still signs with the old CA", issuer.index), func() bool {
			cred = mustExchangeAt(t, issuer.config, token, nil)
			return parseCert(t, cred.ClientCertificateData).CheckSignatureFrom(newCA) == nil
		})
		for _, verifier := range survivors {
			got, err := whoami(t, withCert(verifier.config, cred))
			if err != nil {
				t.Errorf("a new-CA certificate from replica %d at replica %d: %v", issuer.index, verifier.index, err)
				continue
			}
			checkIdentity(t, got, want)
		}
	}
	rotated := time.Since(killed)
	time.Sleep(time.Second) // traffic after the rotation, too

	stats := client.stop()
	t.Logf("alternating client: %d requests sent, %d answered, %d failed at the killed replica's connection and retried on a survivor, %d lost; "+
		"new leader after %v, every survivor signing with the new CA %v after the kill",
		stats.sent, stats.answered, stats.retried, len(stats.lost), tookOver.Round(10*time.Millisecond), rotated.Round(10*time.Millisecond))
	for _, l := range stats.lost {
		t.Errorf("lost: %s", l)
	}
	if stats.answered == 0 || stats.retried > stats.sent {
		t.Errorf("the client's counts do not add up: %+v", stats)
	}
	for _, r := range survivors {
		if got, err := whoami(t, withCert(r.config, before)); err != nil {
			t.Errorf("the certificate issued before the rotation is refused by replica %d: %v", r.index, err)
		} else {
			checkIdentity(t, got, want)
		}
	}
}

// waitForLeader returns the replica named in the Lease's holderIdentity
// once it is one of candidates and is not previous.
func waitForLeader(t *testing.T, ns string, candidates []*replica, previous string) *replica {
	t.Helper()
	var leader *replica
	var holder string
	eventually(t, time.Minute, "no replica took the Lease", func() bool {
		lease, err := adminClient(t).CoordinationV1().Leases(ns).Get(context.Background(), signerSecret, metav1.GetOptions{})
		if err != nil {
			return false
		}
		holder = ptr.Deref(lease.Spec.HolderIdentity, "")
		for _, r := range candidates {
			if r.identity == holder && holder != previous {
				leader = r
				return true
			}
		}
		return false
	})
	return leader
}

// requestRotation sets the annotation an operator sets with kubectl
// annotate.
func requestRotation(t *testing.T, ns, value string) {
	t.Helper()
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, signer.RotateRequestedAnnotation, value)
	_, err := adminClient(t).CoreV1().Secrets(ns).Patch(context.Background(), signerSecret, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

func withCert(cfg *rest.Config, cred *loginv1alpha1.ClusterCredential) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.CertData, c.KeyData = []byte(cred.ClientCertificateData), []byte(cred.ClientKeyData)
	return c
}

func without(replicas []*replica, gone *replica) []*replica {
	var out []*replica
	for _, r := range replicas {
		if r != gone {
			out = append(out, r)
		}
	}
	return out
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, what)
		}
	}
}

// alternatingClient sends one short request at a time, each to the next
// replica in turn, as a round-robin load balancer would.
type alternatingClient struct {
	replicas []*replica
	clients  []kubernetes.Interface
	user     string
	// dead is the killed replica, once it is killed; down, once a request
	// to it failed, after which it gets no more traffic.
	dead atomic.Pointer[replica]
	down atomic.Bool
	done chan struct{}
	wg   sync.WaitGroup

	mu    sync.Mutex
	stats clientStats
}

type clientStats struct {
	sent, answered, retried int
	lost                    []string
}

func startAlternatingClient(t *testing.T, replicas []*replica, cred *loginv1alpha1.ClusterCredential, user string) *alternatingClient {
	t.Helper()
	c := &alternatingClient{replicas: replicas, user: user, done: make(chan struct{})}
	for _, r := range replicas {
		cfg := withCert(r.config, cred)
		cfg.Timeout = 10 * time.Second
		// client-go's default of 5 requests a second would make this a
		// trickle.
		cfg.QPS, cfg.Burst = 1000, 1000
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.clients = append(c.clients, cs)
	}
	c.wg.Add(1)
	go c.run()
	return c
}

func (c *alternatingClient) killed(r *replica) { c.dead.Store(r) }

func (c *alternatingClient) run() {
	defer c.wg.Done()
	for i := 0; ; i++ {
		select {
		case <-c.done:
			return
		default:
		}
		r := c.replicas[i%len(c.replicas)]
		if c.dead.Load() == r && c.down.Load() {
			continue
		}
		c.count(func(s *clientStats) { s.sent++ })
		err := c.ask(r)
		if err != nil && c.dead.Load() == r && isConnectionError(err) {
			c.down.Store(true)
			next := c.replicas[(i+1)%len(c.replicas)]
			c.count(func(s *clientStats) { s.retried++ })
			if err = c.ask(next); err != nil {
				err = fmt.Errorf("failed at the connection, then on replica %d: %w", next.index, err)
			}
		}
		if err != nil {
			c.count(func(s *clientStats) {
				s.lost = append(s.lost, fmt.Sprintf("request #%d to replica %d: %v", i, r.index, err))
			})
			continue
		}
		c.count(func(s *clientStats) { s.answered++ })
	}
}

// ask sends one SelfSubjectReview to r and checks who the upstream saw.
func (c *alternatingClient) ask(r *replica) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	review, err := c.clients[r.index].AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	if got := review.Status.UserInfo.Username; got != c.user {
		return fmt.Errorf("replica %d answered for %q, want %q", r.index, got, c.user)
	}
	return nil
}

// isConnectionError: the request got no HTTP answer at all.
func isConnectionError(err error) bool {
	return statusCode(err) == 0
}

func (c *alternatingClient) count(f func(*clientStats)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(&c.stats)
}

func (c *alternatingClient) stop() clientStats {
	close(c.done)
	c.wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}
