package clusters

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/fsnotify/fsnotify"
	"k8s.io/klog/v2"
)

// Snapshot is what a source holds at one moment: the clusters it
// registers and the entries it refuses.
type Snapshot struct {
	Clusters []Cluster
	Refused  []Refusal
}

// DirWatcher reloads a cluster directory whenever it changes, and at
// every Resync in case a change went unnoticed (a network file system,
// a missed event), and hands each snapshot that differs from the last to
// OnChange.
type DirWatcher struct {
	Dir string
	// Settle is how long the directory must be quiet before a reload:
	// writing a kubeconfig, or a kubelet swapping a mounted Secret's
	// ..data link, is several events.
	Settle time.Duration
	Resync time.Duration
	// OnChange runs on the watcher's goroutine, one snapshot at a time.
	OnChange func(Snapshot)
}

// Run loads the directory once, hands that snapshot over, and then
// follows the directory until ctx ends. A directory it cannot read or
// watch at the start is an error; one that becomes unreadable later is
// logged, and the last snapshot stays.
func (w *DirWatcher) Run(ctx context.Context) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watching the cluster directory: %w", err)
	}
	defer func() { _ = fw.Close() }()
	if err := fw.Add(w.Dir); err != nil {
		return fmt.Errorf("watching the cluster directory %s: %w", w.Dir, err)
	}
	var last lastSnapshot
	if err := w.reload(&last); err != nil {
		return err
	}
	resync := time.NewTicker(w.Resync)
	defer resync.Stop()
	var settle <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-fw.Events:
			if !ok {
				return nil
			}
			settle = time.After(w.Settle)
		case err, ok := <-fw.Errors:
			if !ok {
				return nil
			}
			klog.ErrorS(err, "Watching the cluster directory; changes are still picked up every resync", "dir", w.Dir, "resync", w.Resync)
		case <-settle:
			settle = nil
			w.reloadLogged(&last)
		case <-resync.C:
			w.reloadLogged(&last)
		}
	}
}

func (w *DirWatcher) reloadLogged(last *lastSnapshot) {
	if err := w.reload(last); err != nil {
		klog.ErrorS(err, "Reloading the cluster directory; the clusters registered before stay", "dir", w.Dir)
	}
}

// reload reads the directory and hands the snapshot over if it differs
// from last.
func (w *DirWatcher) reload(last *lastSnapshot) error {
	clusters, refused, err := LoadDir(w.Dir)
	if err != nil {
		return err
	}
	last.handOver(Snapshot{Clusters: clusters, Refused: refused}, w.OnChange)
	return nil
}

// lastSnapshot is the fingerprint of the snapshot a source handed over
// last, so that a source hands over only what changed.
type lastSnapshot struct{ fingerprint string }

// handOver passes s to onChange unless it equals the last one.
func (l *lastSnapshot) handOver(s Snapshot, onChange func(Snapshot)) {
	if fp := fingerprint(s); fp != l.fingerprint {
		l.fingerprint = fp
		onChange(s)
	}
}

// fingerprint changes whenever an entry's name, origin, refusal or file
// contents do, so that rotated credentials count as a change.
func fingerprint(s Snapshot) string {
	h := sha256.New()
	for _, c := range s.Clusters {
		_, _ = fmt.Fprintf(h, "c %s %s %x\n", c.Name, c.Origin, c.digest)
	}
	for _, r := range s.Refused {
		_, _ = fmt.Fprintf(h, "r %s %s\n", r.Origin, r.Reason)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}
