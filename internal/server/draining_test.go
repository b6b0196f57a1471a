package server

import (
	"context"
	"testing"
	"time"

	"github.com/kip-proxy/kip/internal/metrics"
	"github.com/kip-proxy/kip/internal/proxy"
)

// TestDrainAfterShutdownDelay: streams end once shutdown has begun and
// its delay has passed, not before; and not at all when serving stopped
// for another reason first.
func TestDrainAfterShutdownDelay(t *testing.T) {
	const delay = 300 * time.Millisecond
	ctx, stop := context.WithCancel(context.Background())
	drained, drain := context.WithCancel(context.Background())
	defer drain()
	drainAfter(ctx, delay, drained, drain)

	time.Sleep(2 * delay)
	if drained.Err() != nil {
		t.Fatal("drained before shutdown began")
	}
	stopped := time.Now()
	stop()
	select {
	case <-drained.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("never drained after shutdown began")
	}
	if waited := time.Since(stopped); waited < delay {
		t.Errorf("drained %v after shutdown began, before its delay of %v", waited, delay)
	}
}

// TestStreamEndReasonsAreCounted: the proxy's reasons are the metric's
// label values, which count nothing else.
func TestStreamEndReasonsAreCounted(t *testing.T) {
	for _, reason := range [][2]string{
		{proxy.EndWriteDeadline, metrics.EndedWriteDeadline},
		{proxy.EndShutdown, metrics.EndedShutdown},
		{proxy.EndRevoked, metrics.EndedRevoked},
		{proxy.EndClusterRemoved, metrics.EndedClusterRemoved},
		{proxy.EndCAUntrusted, metrics.EndedCAUntrusted},
	} {
		if reason[0] != reason[1] {
			t.Errorf("the proxy ends requests for %q, the metric counts %q", reason[0], reason[1])
		}
	}
}
