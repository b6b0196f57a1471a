package sessions

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/kip-proxy/kip/internal/metrics"
)

const (
	// defaultMinFree is the free space below which the recording directory
	// is not ready: a few hundred sessions' worth of buffered events.
	defaultMinFree = 4 << 20
	// readyTTL is how long a look at the directory answers Ready, so that
	// a burst of sessions costs one statfs and one file creation.
	readyTTL = time.Second
)

// Ready says whether recordings can be kept: the directory is writable
// with space left and, with a bucket, the bucket answered at its last
// upload or probe. With --recording-required the proxy refuses sessions
// while it fails. It never waits on the network.
func (d *Dir) Ready(context.Context) error {
	if err := d.dirReady(); err != nil {
		return err
	}
	if d.uploads != nil {
		return d.uploads.ready()
	}
	return nil
}

// dirReady looks at the directory, at most once per readyTTL.
func (d *Dir) dirReady() error {
	d.readyMu.Lock()
	defer d.readyMu.Unlock()
	now := d.now()
	if !d.readyAt.IsZero() && now.Sub(d.readyAt) < readyTTL && now.After(d.readyAt) {
		return d.readyErr
	}
	err := checkWritable(d.root, d.minFree)
	d.readyAt, d.readyErr = now, err
	d.metrics.SetStorageUp(metrics.StoreDir, err == nil)
	return err
}

// forgetReady makes the next Ready look at the directory again, after a
// recording failed to be written.
func (d *Dir) forgetReady() {
	d.readyMu.Lock()
	d.readyAt = time.Time{}
	d.readyMu.Unlock()
}

// checkWritable fails when root has less than minFree bytes free or a
// file cannot be created in it (read-only, permissions, no inodes).
func checkWritable(root string, minFree uint64) error {
	if free, ok := freeBytes(root); ok && free < minFree {
		return fmt.Errorf("the recording directory %s has %d KiB free, less than %d KiB: free space or give it a larger volume",
			root, free>>10, minFree>>10)
	}
	f, err := os.CreateTemp(root, ".ready-*")
	if err != nil {
		return fmt.Errorf("the recording directory is not writable: %w", err)
	}
	name := f.Name()
	_ = f.Close()
	if err := os.Remove(name); err != nil {
		return fmt.Errorf("the recording directory does not let kip remove its files: %w", err)
	}
	return nil
}

// Run keeps the storage's gauges true and, with a bucket, uploads
// finished recordings, those an earlier kip left first, until ctx ends.
// kip runs it beside serving.
func (d *Dir) Run(ctx context.Context) {
	var wg sync.WaitGroup
	if d.uploads != nil {
		wg.Go(func() { d.uploads.run(ctx) })
	}
	tick := time.NewTicker(probeEvery)
	defer tick.Stop()
	for {
		_ = d.dirReady()
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-tick.C:
		}
	}
}
