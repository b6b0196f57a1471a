package caller

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	authenticationv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"
	"k8s.io/klog/v2"
)

// errKipName is all a caller learns when its identity is refused here: the
// same as for any credential kip does not accept.
var errKipName = errors.New("invalid credentials")

// KipName is kip's own username on the upstream. No identity that kip
// vouches for may take it: kip would impersonate that user, and so hand
// the caller kip's rights, impersonation of anyone included. kip learns
// the name from the upstream with its own credentials; until then it
// refuses every identity it would impersonate.
type KipName struct {
	mu      sync.RWMutex
	name    string
	known   bool
	lastErr error
}

// Get returns kip's upstream username, and false while it is not known.
func (o *KipName) Get() (string, bool) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.name, o.known
}

// Check fails until the name is known; it is a readiness check.
func (o *KipName) Check(*http.Request) error {
	o.mu.RLock()
	defer o.mu.RUnlock()
	if o.known {
		return nil
	}
	if o.lastErr != nil {
		return fmt.Errorf("kip has not learned its own upstream username, so it refuses every identity it would impersonate: %w", o.lastErr)
	}
	return errors.New("kip has not learned its own upstream username yet, so it refuses every identity it would impersonate")
}

// Learn asks the upstream who kip is, with a SelfSubjectReview made with
// kip's own credentials, until it gets an answer or ctx ends. It waits
// retry after the first failure, doubling up to maxRetry. kip's name does
// not change while it runs, so one answer is enough.
func (o *KipName) Learn(ctx context.Context, reviews authenticationv1client.SelfSubjectReviewsGetter, retry, maxRetry time.Duration) {
	for {
		name, err := askKipName(ctx, reviews)
		if err == nil {
			o.set(name, nil)
			klog.InfoS("Learned kip's own upstream username, which no identity kip impersonates may take", "user", name)
			return
		}
		o.set("", err)
		klog.InfoS("Could not learn kip's own upstream username; kip refuses every identity it would impersonate until it does", "err", err, "retryIn", retry)
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry):
		}
		retry = min(2*retry, maxRetry)
	}
}

// LearnOnce asks the upstream who kip is, once, and records the answer.
// A gateway asks each cluster on the first request to it, so that a
// cluster nobody uses costs no connection.
func (o *KipName) LearnOnce(ctx context.Context, reviews authenticationv1client.SelfSubjectReviewsGetter) error {
	name, err := askKipName(ctx, reviews)
	o.set(name, err)
	if err == nil {
		klog.InfoS("Learned kip's own upstream username, which no identity kip impersonates there may take", "user", name)
	}
	return err
}

// set records the name, or the error that kept kip from learning it.
func (o *KipName) set(name string, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.name, o.known, o.lastErr = name, err == nil, err
}

func askKipName(ctx context.Context, reviews authenticationv1client.SelfSubjectReviewsGetter) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	r, err := reviews.SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("asking the upstream who kip is (SelfSubjectReview): %w", err)
	}
	if r.Status.UserInfo.Username == "" {
		return "", errors.New("the upstream's SelfSubjectReview names no user")
	}
	return r.Status.UserInfo.Username, nil
}

// Reason says why name may not be impersonated, or returns "" when it may.
// Letter case is ignored: a name that differs from kip's only in case is
// never one a legitimate identity source means.
func (o *KipName) Reason(name string) string {
	own, known := o.Get()
	switch {
	case !known:
		return "kip has not learned its own upstream username yet"
	case strings.EqualFold(name, own):
		return fmt.Sprintf("the username %q is kip's own upstream username", name)
	}
	return ""
}

// RefuseKipName wraps kip's request authenticator: a user kip would
// impersonate (from a certificate, an OIDC or a webhook token) that takes
// kip's own upstream name gets 401, with a log line saying why. A user the
// upstream verified itself is passed on: its token goes upstream as it is,
// with no kip credential, so it gains nothing of kip's.
func RefuseKipName(own *KipName, auth authenticator.Request) authenticator.Request {
	return authenticator.RequestFunc(func(req *http.Request) (*authenticator.Response, bool, error) {
		resp, ok, err := auth.AuthenticateRequest(req)
		if err != nil || !ok {
			return resp, ok, err
		}
		if _, upstream := PassthroughToken(resp.User); upstream {
			return resp, true, nil
		}
		if why := own.Reason(resp.User.GetName()); why != "" {
			klog.InfoS("Refused an identity kip would impersonate", "user", resp.User.GetName(), "reason", why)
			return nil, false, errKipName
		}
		return resp, true, nil
	})
}
