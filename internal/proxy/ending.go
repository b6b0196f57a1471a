package proxy

import (
	"context"
	"io"
	"net/http"
	"sync/atomic"

	"k8s.io/streaming/pkg/httpstream"
)

type endKey struct{}

// end is one reason a streamed response may be ended early; ends of one
// request form a list, innermost first.
type end struct {
	ctx context.Context
	// ended hears that this end, and not another, ended the stream; nil
	// when nobody counts it.
	ended func()
	next  *end
}

// WithEnd marks a streamed response (a watch, logs -f) to end when end
// does, or any end set before: the caller then reads the end of a finished
// response, not a reset stream, and a watch ends the way client-go expects
// one to, by starting over. A gateway ends the streams of a cluster it no
// longer serves this way, and the revocation list those of a revoked user.
// Upgraded connections (exec, attach, port-forward) are not ended by it;
// their request's context is.
func WithEnd(ctx, end context.Context) context.Context {
	return withEnd(ctx, end, nil)
}

// withEnd adds an end to those ctx already has: the stream ends with the
// first of them.
func withEnd(ctx, done context.Context, ended func()) context.Context {
	return context.WithValue(ctx, endKey{}, &end{ctx: done, ended: ended, next: endsFrom(ctx)})
}

func endsFrom(ctx context.Context) *end {
	e, _ := ctx.Value(endKey{}).(*end)
	return e
}

// endingBody is an upstream body that reads as finished once one of its
// ends is done. Closing the upstream body wakes a read blocked on it; the
// read then reports the end instead of the error of a closed body.
type endingBody struct {
	io.ReadCloser
	ended atomic.Bool
	stops []func() bool
}

func newEndingBody(body io.ReadCloser, ends *end) *endingBody {
	b := &endingBody{ReadCloser: body}
	for e := ends; e != nil; e = e.next {
		b.stops = append(b.stops, context.AfterFunc(e.ctx, func() { b.end(e.ended) }))
	}
	return b
}

// end finishes the stream; only the first end to come is counted.
func (b *endingBody) end(ended func()) {
	if b.ended.CompareAndSwap(false, true) && ended != nil {
		ended()
	}
	_ = b.ReadCloser.Close()
}

func (b *endingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && b.ended.Load() {
		return n, io.EOF
	}
	return n, err
}

func (b *endingBody) Close() error {
	for _, stop := range b.stops {
		stop()
	}
	return b.ReadCloser.Close()
}

// EndWith makes r end when end does, the way its kind of request ends
// cleanly: a streamed response as a finished one (WithEnd), an upgraded
// connection (exec, attach, port-forward) by cancelling its context,
// which cuts it. counted, when not nil, hears that end, and not another
// cause, ended the request. stop releases what EndWith set up; call it
// once the request is done.
func EndWith(r *http.Request, end context.Context, counted func()) (ended *http.Request, stop func()) {
	if !httpstream.IsUpgradeRequest(r) {
		return r.WithContext(withEnd(r.Context(), end, counted)), func() {}
	}
	ctx, cancel := context.WithCancel(r.Context())
	unregister := context.AfterFunc(end, func() {
		// The request is still running, or stop would have unregistered
		// this; its own end would have cancelled ctx first.
		if ctx.Err() == nil && counted != nil {
			counted()
		}
		cancel()
	})
	return r.WithContext(ctx), func() {
		unregister()
		cancel()
	}
}
