package signer

import (
	"context"
	"time"

	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/klog/v2"
)

// minCheckDelay keeps Run from spinning when a window ends right now.
const minCheckDelay = time.Second

// RunOnce reads the source once and does the periodic upkeep.
func (c *CA) RunOnce(ctx context.Context) error {
	if err := c.src.sync(ctx); err != nil {
		return err
	}
	c.maintain(ctx)
	return nil
}

// Run follows the source and does the upkeep until ctx is done: retired CAs
// leave the bundle as soon as their window ends, and a Secret-backed CA
// takes part in the election of the replica that rotates it.
func (c *CA) Run(ctx context.Context, _ int) {
	defer utilruntime.HandleCrashWithContext(ctx)
	klog.InfoS("Starting kip's signer CA", "name", c.name)
	defer klog.InfoS("Stopping kip's signer CA", "name", c.name)

	go c.src.watch(ctx)
	for {
		c.maintain(ctx)
		timer := c.opts.Clock.NewTimer(c.untilNextCheck())
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C():
		}
	}
}

func (c *CA) maintain(ctx context.Context) {
	c.prune()
	c.src.maintain(ctx)
}

// untilNextCheck waits the check interval, or less when a retired window
// ends sooner, so the bundle shrinks on time.
func (c *CA) untilNextCheck() time.Duration {
	wait := c.opts.CheckInterval
	if next := c.state.Load().nextExpiry(); !next.IsZero() {
		wait = min(wait, next.Sub(c.opts.Clock.Now()))
	}
	return max(wait, minCheckDelay)
}
