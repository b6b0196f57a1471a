package server

import (
	"context"
	"time"

	"github.com/kip-proxy/kip/internal/proxy"
)

// streamLimits are the bounds of every proxy's long-running answers: a
// write deadline and the drain that ends them on shutdown.
func (c Config) streamLimits() proxy.LongRunning {
	return proxy.LongRunning{
		WriteTimeout: c.StreamWriteTimeout,
		Drain:        c.drain,
		Ended:        c.metrics().LongRunningEnds().Ended,
	}
}

// drainAfter calls drain once ctx has ended and delay has passed since:
// when the generic server stops taking requests (its
// NotAcceptingNewRequest signal, which it does not export), after the
// --shutdown-delay-duration during which /readyz fails. kube-apiserver
// ends its watches at that moment too, with
// --shutdown-watch-termination-grace-period. Without this, an open watch
// keeps its connection active and the generic server waits the whole
// --request-timeout for it before it exits. It returns early, without
// draining, once drained is done.
func drainAfter(ctx context.Context, delay time.Duration, drained context.Context, drain func()) {
	go func() {
		select {
		case <-ctx.Done():
		case <-drained.Done():
			return
		}
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
			drain()
		case <-drained.Done():
		}
	}()
}
