package integration

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"

	"github.com/kip-proxy/kip/internal/rig/harness"
	"github.com/kip-proxy/kip/internal/rig/tokenwebhook"
)

// The flood test's kip: a small budget that refills once a second, so the
// bound on outbound reviews is tight enough to tell from no bound at all.
const (
	floodBurst          = 20
	floodRefill         = time.Second
	floodMaxReviews     = 4
	floodGoroutines     = 4 // per flooding address
	floodTokensEach     = 300
	floodWebhookTokenOf = "dana"
)

// TestFailedAuthenticationFlood floods a kip of its own with random bearer
// tokens from two addresses, one of them shared with two signed-in users
// (a client certificate, the same with kubectl --as, and a webhook token),
// and counts the outbound
// reviews three ways: at the token webhook, in the upstream's audit log,
// and in kip's metrics. The users' requests must all succeed, and the
// reviews must stay within the budget: burst plus one per second per
// address, far fewer than the tokens sent.
func TestFailedAuthenticationFlood(t *testing.T) {
	hook := startCountingWebhook(t)
	kip := harness.StartKip(t, harness.KipOptions{Stack: stack, Args: []string{
		"--authentication-token-webhook-config-file=" + hook.kubeconfig,
		fmt.Sprintf("--authentication-failure-burst=%d", floodBurst),
		"--authentication-failure-refill-interval=" + floodRefill.String(),
		fmt.Sprintf("--max-outbound-authentication-reviews=%d", floodMaxReviews),
	}})
	ns := createNamespace(t)
	certUser, impersonated := harness.UniqueName("flood-cert-user"), harness.UniqueName("flood-impersonated")
	grant(t, ns, userSubject(certUser), configMapRules...)
	grant(t, ns, userSubject(floodWebhookTokenOf), configMapRules...)
	grant(t, ns, userSubject(impersonated), configMapRules...)
	grantCluster(t, userSubject(certUser), rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"users"}, Verbs: []string{"impersonate"}, ResourceNames: []string{impersonated}})
	list := "/api/v1/namespaces/" + ns + "/configmaps"

	cert := rawUserCert(t, certUser)
	users := []*floodUser{
		{name: "client certificate", client: floodClient(t, kip.CAPEM, "127.0.0.1", cert)},
		{name: "webhook token", client: floodClient(t, kip.CAPEM, "127.0.0.1", nil), token: hook.goodToken},
		// kubectl --as: kip asks the upstream with a SubjectAccessReview
		// of its own, which the flood must not starve.
		{name: "client certificate with --as", client: floodClient(t, kip.CAPEM, "127.0.0.1", cert), impersonate: impersonated},
	}
	for _, u := range users {
		// Signed in before the flood starts, as a user at work would be.
		harness.Eventually(t, 30*time.Second, func() error { return u.get(kip.URL + list) })
	}

	t.Run("flood", func(t *testing.T) {
		before := scrape(t, kip.ProbeURL)
		hooked := hook.Reviews()
		start := time.Now()
		flood := floodRandomTokens(t, kip.URL+list, kip.CAPEM, users)
		elapsed := time.Since(start)
		after := scrape(t, kip.ProbeURL)
		webhookCalls := hook.Reviews() - hooked
		upstreamReviews := tokenReviewsAudited(t, start, time.Now())
		outbound := after.Sample("kip_authentication_outbound_reviews_total", nil) - before.Sample("kip_authentication_outbound_reviews_total", nil)
		throttled := after.Sample("kip_authentication_throttled_total", nil) - before.Sample("kip_authentication_throttled_total", nil)

		for _, u := range users {
			t.Logf("%s: %d requests during the flood, %d failed", u.name, u.requests.Load(), u.failures.Load())
			if u.failures.Load() > 0 || u.requests.Load() < 10 {
				t.Errorf("%s: %d of %d requests failed during the flood (last: %v); want none of at least 10", u.name, u.failures.Load(), u.requests.Load(), u.lastErr.Load())
			}
		}
		// Each address fails at most the burst, plus one per refill; each
		// failure costs one webhook call and one TokenReview.
		failures := 2 * (floodBurst + int(math.Ceil(elapsed.Seconds()/floodRefill.Seconds())) + 1)
		sent := 2 * floodGoroutines * floodTokensEach
		t.Logf("%d random tokens in %v: %d answered 401, %d 429, %d other; %d webhook calls, %d TokenReviews in the upstream's audit log, %.0f outbound reviews and %.0f throttled in kip's metrics; bound %d failures",
			sent, elapsed.Round(time.Millisecond), flood.unauthorized, flood.throttled, flood.other, webhookCalls, upstreamReviews, outbound, throttled, failures)
		if flood.other > 0 {
			t.Errorf("%d flood requests were answered neither 401 nor 429 (last: %s)", flood.other, flood.lastOther)
		}
		if webhookCalls > failures || upstreamReviews > failures || int(outbound) > 2*failures {
			t.Errorf("outbound reviews not bounded: %d webhook calls, %d upstream TokenReviews, %.0f in kip's metrics; want at most %d, %d, %d",
				webhookCalls, upstreamReviews, outbound, failures, failures, 2*failures)
		}
		if webhookCalls*10 > sent || upstreamReviews*10 > sent {
			t.Errorf("%d webhook calls and %d TokenReviews for %d tokens: want far fewer reviews than tokens", webhookCalls, upstreamReviews, sent)
		}
		if int(throttled) != flood.throttled || flood.throttled < sent/2 {
			t.Errorf("%d flood requests got 429 and kip counted %.0f throttled; want the same, and most of %d", flood.throttled, throttled, sent)
		}
	})

	t.Run("a repeated bad token is asked once", func(t *testing.T) {
		const repeats = 10
		// An address of its own, with its whole budget.
		client := floodClient(t, kip.CAPEM, "127.0.0.2", nil)
		before := scrape(t, kip.ProbeURL)
		hooked := hook.Reviews()
		token := randomToken(t)
		for i := range repeats {
			if code, body := floodGet(client, kip.URL+list, token, ""); code != http.StatusUnauthorized {
				t.Fatalf("repeat %d of a bad token: %d %s, want 401", i, code, body)
			}
		}
		after := scrape(t, kip.ProbeURL)
		hits := after.Sample("kip_authentication_refused_cache_hits_total", nil) - before.Sample("kip_authentication_refused_cache_hits_total", nil)
		if calls := hook.Reviews() - hooked; calls != 1 || hits != repeats-1 {
			t.Errorf("%d webhook calls and %.0f refused-cache hits for one bad token sent %d times; want 1 and %d", calls, hits, repeats, repeats-1)
		}
	})
}

// floodUser is a signed-in user who keeps working during the flood.
type floodUser struct {
	name        string
	client      *http.Client
	token       string
	impersonate string
	requests    atomic.Int64
	failures    atomic.Int64
	lastErr     atomic.Value
}

func (u *floodUser) get(url string) error {
	code, body := floodGet(u.client, url, u.token, u.impersonate)
	if code != http.StatusOK {
		return fmt.Errorf("%s: %d %s", u.name, code, body)
	}
	return nil
}

// work sends requests until stop closes, counting failures.
func (u *floodUser) work(url string, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(20 * time.Millisecond):
		}
		u.requests.Add(1)
		if err := u.get(url); err != nil {
			u.failures.Add(1)
			u.lastErr.Store(err.Error())
		}
	}
}

// floodResult counts the flood's answers.
type floodResult struct {
	unauthorized, throttled, other int
	lastOther                      string
}

// floodRandomTokens sends floodTokensEach random tokens from each of
// floodGoroutines goroutines at two addresses, one of them the users',
// while the users keep working.
func floodRandomTokens(t *testing.T, url string, caPEM []byte, users []*floodUser) floodResult {
	t.Helper()
	stop := make(chan struct{})
	var working sync.WaitGroup
	for _, u := range users {
		working.Go(func() { u.work(url, stop) })
	}
	var mu sync.Mutex
	var res floodResult
	var flooding sync.WaitGroup
	for _, addr := range []string{"127.0.0.1", "127.0.0.3"} {
		client := floodClient(t, caPEM, addr, nil)
		for range floodGoroutines {
			flooding.Go(func() {
				for range floodTokensEach {
					code, body := floodGet(client, url, randomToken(t), "")
					mu.Lock()
					switch code {
					case http.StatusUnauthorized:
						res.unauthorized++
					case http.StatusTooManyRequests:
						res.throttled++
					default:
						res.other++
						res.lastOther = fmt.Sprintf("%d %s", code, body)
					}
					mu.Unlock()
				}
			})
		}
	}
	flooding.Wait()
	close(stop)
	working.Wait()
	return res
}

// floodClient speaks HTTP/2 to kip from localIP, a loopback address, so
// that kip sees a client address of the test's choosing.
func floodClient(t *testing.T, caPEM []byte, localIP string, cert *tls.Certificate) *http.Client {
	t.Helper()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("kip's serving CA is not valid PEM")
	}
	cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(localIP)}, Timeout: 10 * time.Second}
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true, DialContext: dialer.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// floodGet GETs url with token as bearer token and as impersonating, if
// any; a transport error is code 0.
func floodGet(client *http.Client, url, token, as string) (int, string) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, err.Error()
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if as != "" {
		req.Header.Set("Impersonate-User", as)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(body)
}

func randomToken(t *testing.T) string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Error(err)
	}
	return hex.EncodeToString(b)
}

// tokenReviewsAudited counts the TokenReviews the upstream's audit log
// shows received between from and to: every kip's, this test's among
// them, since the upstream cannot tell kips apart.
func tokenReviewsAudited(t *testing.T, from, to time.Time) int {
	t.Helper()
	// The audit log is written as requests complete; give the last ones a
	// moment.
	time.Sleep(time.Second)
	n := 0
	for _, ev := range readAudit(t, auditLogPath, "/apis/authentication.k8s.io/v1/tokenreviews") {
		received := ev.RequestReceivedTimestamp.Time
		if ev.Stage == auditv1.StageResponseComplete && !received.Before(from) && !received.After(to) {
			n++
		}
	}
	return n
}

// countingWebhook is the rig's token webhook accepting one token, for
// floodWebhookTokenOf; it counts every review it is asked for.
type countingWebhook struct {
	*tokenwebhook.Webhook
	kubeconfig, goodToken string
}

func startCountingWebhook(t *testing.T) *countingWebhook {
	t.Helper()
	hook, err := tokenwebhook.Start(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hook.Close)
	w := &countingWebhook{Webhook: hook, goodToken: "flood-test-token-" + randomToken(t), kubeconfig: filepath.Join(t.TempDir(), "webhook.kubeconfig")}
	hook.Vouch(w.goodToken, authenticationv1.UserInfo{Username: floodWebhookTokenOf, UID: "dana-uid"})
	if err := hook.WriteKubeconfig(w.kubeconfig); err != nil {
		t.Fatal(err)
	}
	return w
}
