package proxy

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/kip-proxy/kip/internal/caller"
)

// Proxy forwards authenticated requests to the upstream API server.
type Proxy struct {
	target *url.URL
	// short serves every request but watches, watch serves watches; they
	// differ only in their copy buffers.
	short, watch *httputil.ReverseProxy
	// health hears whether the upstream answers; nil when nobody listens.
	health Health
	// recorder records exec and attach sessions; nil when off.
	recorder Recorder
	// recordingRequired refuses sessions that cannot be recorded.
	recordingRequired bool
	// longRunning bounds requests without a deadline.
	longRunning LongRunning
}

// Health hears of every answer from the upstream and every round trip
// that failed to get one, so that a gateway can stop sending requests to a
// cluster that is down.
type Health interface {
	Succeeded()
	Failed(error)
}

// Option changes how a proxy is built.
type Option func(*Proxy)

// WithHealth reports the upstream's answers and failures to h.
func WithHealth(h Health) Option {
	return func(p *Proxy) { p.health = h }
}

// New returns a proxy to the API server that upstream describes, using the
// credentials in it for impersonation.
func New(upstream *rest.Config, opts ...Option) (*Proxy, error) {
	target, err := upstreamURL(upstream)
	if err != nil {
		return nil, err
	}
	rt, err := newTransports(upstream)
	if err != nil {
		return nil, err
	}
	p := newProxy(target, rt)
	for _, o := range opts {
		o(p)
	}
	return p, nil
}

func newProxy(target *url.URL, rt http.RoundTripper) *Proxy {
	p := &Proxy{target: target}
	p.short = p.reverseProxy(rt, newBufferPool(shortBufferSize))
	p.watch = p.reverseProxy(rt, newBufferPool(watchBufferSize))
	return p
}

func (p *Proxy) reverseProxy(rt http.RoundTripper, buffers httputil.BufferPool) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:   p.rewrite,
		Transport: rt,
		// Streams (watch, logs -f, anything the upstream sends without a
		// Content-Length) are flushed at every write by ReverseProxy
		// itself; upgrades are spliced. A response of known length is
		// finite, so it goes out in one piece when the body ends: one TLS
		// record and one write fewer per short request.
		FlushInterval:  0,
		BufferPool:     buffers,
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.handleError,
		ErrorLog:       log.New(klogWriter{}, "", 0),
	}
}

func upstreamURL(cfg *rest.Config) (*url.URL, error) {
	base, _, err := rest.DefaultServerUrlFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("reading the upstream API server address: %w", err)
	}
	return base, nil
}

// ServeHTTP checks that nothing the caller chose survived the chain, then
// forwards the request as the identity kip authenticated.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := forbiddenInbound(r.Header); err != nil {
		klog.ErrorS(err, "Failing closed", "uri", r.RequestURI)
		writeStatus(w, apierrors.NewInternalError(err))
		return
	}
	id, err := identityOf(r)
	if err != nil {
		writeStatus(w, apierrors.NewInternalError(err))
		return
	}
	headers, err := upstreamHeaders(id)
	if err != nil {
		writeStatus(w, apierrors.NewInternalError(err))
		return
	}
	// Checked before anything reaches the upstream: a refused session
	// must not have started there.
	if err := p.recordingReady(r); err != nil {
		writeStatus(w, apierrors.NewServiceUnavailable(err.Error()))
		return
	}
	ctx := r.Context()
	if id.Token != "" {
		ctx = withCallerToken(ctx)
	}
	// The request deadline stops the upstream call but not a write blocked
	// on a caller that never reads: without a write deadline such a caller
	// would hold its in-flight slot, and enough of them every user's. The
	// grace leaves time to write the 504 that a deadline passing earns.
	// Long-running requests have no deadline; serveLongRunning bounds
	// each of their writes instead.
	r = r.WithContext(contextWithHeaders(ctx, headers))
	deadline, ok := ctx.Deadline()
	if !ok {
		p.serveLongRunning(w, r)
		return
	}
	_ = http.NewResponseController(w).SetWriteDeadline(deadline.Add(writeGrace))
	p.reverseFor(ctx).ServeHTTP(w, r)
}

// writeGrace is how long after a short request's deadline kip still
// writes its answer: enough for a 504 Status, not for a caller that never
// reads to keep its slot.
const writeGrace = 2 * time.Second

// reverseFor picks the reverse proxy, and so the copy buffer, for a request.
func (p *Proxy) reverseFor(ctx context.Context) *httputil.ReverseProxy {
	if info, ok := request.RequestInfoFrom(ctx); ok && info.Verb == "watch" {
		return p.watch
	}
	return p.short
}

// identityOf reads the user the chain authenticated and, if the caller used
// nested impersonation, the user it started as.
func identityOf(r *http.Request) (upstreamIdentity, error) {
	u, ok := request.UserFrom(r.Context())
	if !ok || u == nil {
		return upstreamIdentity{}, errors.New("no authenticated user reached the proxy step")
	}
	original, ok := caller.OriginalUserFrom(r.Context())
	if !ok || original == nil {
		original = u
	}
	id := upstreamIdentity{User: u}
	if !sameUser(u, original) {
		id.Original = original
	}
	// Only the caller's own credential may be passed through: an
	// upstream-verified token identifies the original caller.
	if token, ok := caller.PassthroughToken(original); ok {
		id.Token = token
	}
	return id, nil
}

func sameUser(a, b user.Info) bool {
	if a.GetName() != b.GetName() || a.GetUID() != b.GetUID() || !equalStrings(a.GetGroups(), b.GetGroups()) {
		return false
	}
	ea, eb := a.GetExtra(), b.GetExtra()
	if len(ea) != len(eb) {
		return false
	}
	for k, v := range ea {
		if w, ok := eb[k]; !ok || !equalStrings(v, w) {
			return false
		}
	}
	return true
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// rewrite runs after httputil.ReverseProxy removed hop-by-hop headers and
// those named in Connection, so nothing the caller named there can remove
// what kip sets here.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	pr.SetURL(p.target)
	dropSpoofable(pr.Out.Header)
	for name, values := range headersFrom(pr.In.Context()) {
		pr.Out.Header[name] = values
	}
	if host, _, err := net.SplitHostPort(pr.In.RemoteAddr); err == nil {
		pr.Out.Header.Set("X-Forwarded-For", host)
	}
}

func (p *Proxy) handleError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errUnrecordable) {
		// The upstream is fine; kip's own storage is not.
		writeStatus(w, apierrors.NewServiceUnavailable(err.Error()))
		return
	}
	if errors.Is(r.Context().Err(), context.Canceled) {
		// The caller went away; there is nobody left to answer. A passed
		// deadline is answered below with 504.
		return
	}
	if p.health != nil && !errors.Is(r.Context().Err(), context.DeadlineExceeded) {
		// A passed deadline is the request's, not the upstream's fault:
		// one slow list must not mark a whole cluster down.
		p.health.Failed(err)
	}
	se := upstreamError(err, p.target.Host)
	klog.V(2).InfoS("Upstream request failed", "uri", r.RequestURI, "code", se.ErrStatus.Code, "err", err)
	writeStatus(w, se)
}

// modifyResponse runs on every answer from the upstream.
func (p *Proxy) modifyResponse(res *http.Response) error {
	if p.health != nil {
		p.health.Succeeded()
	}
	if ends := endsFrom(res.Request.Context()); ends != nil && res.StatusCode != http.StatusSwitchingProtocols {
		res.Body = newEndingBody(res.Body, ends)
	}
	if p.recorder != nil && isRecorded(res) {
		if err := p.record(res); err != nil {
			// The reverse proxy then closes the upstream's connection
			// and answers with handleError instead of switching.
			return err
		}
	}
	return addSecurityHeaders(res)
}

// Security header values, shared by every response: Header.Set would
// allocate a slice for each on every request. Nothing edits a header's
// values in place, so sharing them is safe.
var (
	noSniff     = []string{"nosniff"}
	denyFrames  = []string{"DENY"}
	noCachePriv = []string{"no-cache, private"}
)

// addSecurityHeaders marks every response as not to be sniffed, framed or
// cached by a browser that ends up talking to kip. The names are
// canonical, so assigning them directly does what Header.Set would.
func addSecurityHeaders(res *http.Response) error {
	h := res.Header
	h["X-Content-Type-Options"] = noSniff
	h["X-Frame-Options"] = denyFrames
	if h.Get("Cache-Control") == "" {
		h["Cache-Control"] = noCachePriv
	}
	return nil
}

type klogWriter struct{}

func (klogWriter) Write(p []byte) (int, error) {
	klog.V(2).InfoDepth(1, string(p))
	return len(p), nil
}
