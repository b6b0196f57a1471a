package exchange

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"

	loginv1alpha1 "github.com/kip-proxy/kip/pkg/apis/login/v1alpha1"
)

// ErrAuthenticationFailed means kip did not accept the token. kip says no
// more than that about why, on purpose.
var ErrAuthenticationFailed = errors.New("authentication failed")

// DefaultMaxRetryWait is the longest Retry-After that Exchange waits out.
// kubectl blocks while the plugin runs, so a longer wait is reported
// instead of sat through.
const DefaultMaxRetryWait = 30 * time.Second

// RateLimitedError means kip is refusing exchanges for now.
type RateLimitedError struct {
	// RetryAfter is how long kip asked the client to wait, if it said.
	RetryAfter time.Duration
}

func (e *RateLimitedError) Error() string {
	if e.RetryAfter > 0 {
		return fmt.Sprintf("kip is limiting credential exchanges and asks to retry in %s; try again then", e.RetryAfter)
	}
	return "kip is limiting credential exchanges; try again in a moment"
}

// Client posts TokenCredentialRequests.
type Client struct {
	rest         *rest.RESTClient
	host         string
	retryAfter   *retryAfterRecorder
	maxRetryWait time.Duration
}

// SpeakLoginGroup sets c up for kip's own API group, login.kip.dev/v1alpha1,
// in JSON: the exchange and a gateway's cluster list.
func SpeakLoginGroup(c *rest.Config) error {
	scheme := runtime.NewScheme()
	if err := loginv1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	c.GroupVersion = &loginv1alpha1.SchemeGroupVersion
	c.APIPath = "/apis"
	c.ContentType = runtime.ContentTypeJSON
	c.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
	return nil
}

// New returns a client for the kip server described by cfg (its URL and
// serving CA). Any credentials in cfg are dropped: the exchange endpoint is
// the one kip serves to unauthenticated callers.
func New(cfg *rest.Config) (*Client, error) {
	c := rest.AnonymousClientConfig(cfg)
	if err := SpeakLoginGroup(c); err != nil {
		return nil, err
	}
	if c.UserAgent == "" {
		c.UserAgent = "kip-login"
	}
	rec := &retryAfterRecorder{}
	c.Wrap(rec.wrap)
	rc, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, fmt.Errorf("configuring the client of kip at %s: %w", cfg.Host, err)
	}
	return &Client{rest: rc, host: cfg.Host, retryAfter: rec, maxRetryWait: DefaultMaxRetryWait}, nil
}

// Host is kip's URL.
func (c *Client) Host() string { return c.host }

// SetMaxRetryWait changes DefaultMaxRetryWait for this client.
func (c *Client) SetMaxRetryWait(d time.Duration) { c.maxRetryWait = d }

// Exchange trades token for a certificate of the key behind csrPEM. When
// kip answers 429 it waits out Retry-After once (if it is short enough) and
// tries again; a second 429 is a *RateLimitedError.
func (c *Client) Exchange(ctx context.Context, token string, csrPEM []byte) (*loginv1alpha1.ClusterCredential, error) {
	cred, err := c.post(ctx, token, csrPEM)
	var limited *RateLimitedError
	if !errors.As(err, &limited) || limited.RetryAfter > c.maxRetryWait {
		return cred, err
	}
	wait := max(limited.RetryAfter, time.Second)
	select {
	case <-time.After(wait):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return c.post(ctx, token, csrPEM)
}

func (c *Client) post(ctx context.Context, token string, csrPEM []byte) (*loginv1alpha1.ClusterCredential, error) {
	req := &loginv1alpha1.TokenCredentialRequest{
		Spec: loginv1alpha1.TokenCredentialRequestSpec{Token: token, CertificateSigningRequest: csrPEM},
	}
	var out loginv1alpha1.TokenCredentialRequest
	c.retryAfter.reset()
	// client-go's own retries are off: kip decides how often to retry.
	err := c.rest.Post().Resource(loginv1alpha1.Resource).Body(req).MaxRetries(0).Do(ctx).Into(&out)
	if apierrors.IsTooManyRequests(err) {
		return nil, &RateLimitedError{RetryAfter: c.suggestedDelay(err)}
	}
	if err != nil {
		return nil, fmt.Errorf("exchanging the token for a certificate at %s: %w", c.host, err)
	}
	return credentialFrom(&out)
}

// suggestedDelay takes kip's hint from the Status body or, when the body
// carries none, from the Retry-After header.
func (c *Client) suggestedDelay(err error) time.Duration {
	if s, ok := apierrors.SuggestsClientDelay(err); ok && s > 0 {
		return time.Duration(s) * time.Second
	}
	return c.retryAfter.get()
}

func credentialFrom(out *loginv1alpha1.TokenCredentialRequest) (*loginv1alpha1.ClusterCredential, error) {
	if cred := out.Status.Credential; cred != nil && cred.ClientCertificateData != "" {
		return cred, nil
	}
	if msg := out.Status.Message; msg != nil && *msg != "authentication failed" {
		return nil, fmt.Errorf("kip issued no certificate: %s", *msg)
	}
	return nil, ErrAuthenticationFailed
}

// retryAfterRecorder keeps the Retry-After header of the last response,
// which client-go drops when the body is a Status.
type retryAfterRecorder struct {
	seconds atomic.Int64
}

func (r *retryAfterRecorder) reset() { r.seconds.Store(0) }
func (r *retryAfterRecorder) get() time.Duration {
	return time.Duration(r.seconds.Load()) * time.Second
}

func (r *retryAfterRecorder) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := rt.RoundTrip(req)
		if err == nil {
			if s, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && s > 0 {
				r.seconds.Store(int64(s))
			}
		}
		return resp, err
	})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }
