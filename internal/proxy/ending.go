package proxy

import (
	"context"
	"io"
	"sync/atomic"
)

type endKey struct{}

// WithEnd marks a streamed response (a watch, logs -f) to end when end
// does: the caller then reads the end of a finished response, not a reset
// stream, and a watch ends the way client-go expects one to, by starting
// over. A gateway ends the streams of a cluster it no longer serves this
// way. Upgraded connections (exec, attach, port-forward) are not ended by
// it; their request's context is.
func WithEnd(ctx, end context.Context) context.Context {
	return context.WithValue(ctx, endKey{}, end)
}

func endFrom(ctx context.Context) context.Context {
	end, _ := ctx.Value(endKey{}).(context.Context)
	return end
}

// endingBody is an upstream body that reads as finished once end is done.
// Closing the upstream body wakes a read blocked on it; the read then
// reports the end instead of the error of a closed body.
type endingBody struct {
	io.ReadCloser
	ended atomic.Bool
	stop  func() bool
}

func newEndingBody(body io.ReadCloser, end context.Context) *endingBody {
	b := &endingBody{ReadCloser: body}
	b.stop = context.AfterFunc(end, func() {
		b.ended.Store(true)
		_ = body.Close()
	})
	return b
}

func (b *endingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && b.ended.Load() {
		return n, io.EOF
	}
	return n, err
}

func (b *endingBody) Close() error {
	b.stop()
	return b.ReadCloser.Close()
}
