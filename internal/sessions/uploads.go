package sessions

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/klog/v2"

	"github.com/kip-proxy/kip/internal/metrics"
)

// objectStore is what uploads need of a bucket; tests fake it.
type objectStore interface {
	// put uploads body as rel, a slash-separated name under the prefix.
	put(ctx context.Context, rel string, body io.Reader, size int64, contentType string) error
	// probe checks that the bucket is reachable.
	probe(ctx context.Context) error
	String() string
}

// Content types of what uploads put.
const (
	castContentType = "application/x-asciicast"
	keyContentType  = "application/x-pem-file"
)

// The upload schedule: a failed attempt is tried again after a backoff
// that doubles up to maxBackoff; with nothing to upload, the bucket is
// probed every probeEvery, so that its gauge and Ready stay true.
const (
	minBackoff = time.Second
	maxBackoff = 30 * time.Second
	probeEvery = 5 * time.Second
)

// uploads copies finished recordings, and the public keys that verify
// them, from the recording directory to a bucket, deleting each recording
// only once the bucket holds it. What the bucket refuses stays on disk and
// is tried again, with backoff, and at kip's next start; a session never
// waits for any of it.
type uploads struct {
	root    string
	bucket  objectStore
	metrics *metrics.Recordings
	now     func() time.Time
	// minBackoff, maxBackoff and probeEvery are the constants above,
	// shorter in tests.
	minBackoff, maxBackoff, probeEvery time.Duration

	wake chan struct{} // a recording was finished

	mu sync.Mutex
	// pending are the finished recordings to upload, relative to root.
	pending map[string]bool
	// open are the recordings being written, never to be uploaded yet.
	open     map[string]bool
	keysDone bool
	// status is the bucket's last upload or probe: nil when it worked,
	// errNotChecked before the first.
	status error
}

// errNotChecked is the bucket's status until the first upload or probe.
var errNotChecked = errors.New("the recordings' bucket has not been checked yet")

func newUploads(root string, bucket objectStore, m *metrics.Recordings) *uploads {
	return &uploads{
		root: root, bucket: bucket, metrics: m, now: time.Now,
		minBackoff: minBackoff, maxBackoff: maxBackoff, probeEvery: probeEvery,
		wake: make(chan struct{}, 1), pending: map[string]bool{}, open: map[string]bool{},
		status: errNotChecked,
	}
}

// opened says that path is being written and must not be uploaded.
func (u *uploads) opened(path string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.open[path] = true
}

// finished queues the recording at path, which is no longer written.
func (u *uploads) finished(path string) {
	rel, err := filepath.Rel(u.root, path)
	u.mu.Lock()
	delete(u.open, path)
	if err == nil {
		u.pending[rel] = true
	}
	n := len(u.pending)
	u.mu.Unlock()
	u.metrics.SetUploadsPending(n)
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

// ready is the bucket's status as of its last upload or probe.
func (u *uploads) ready() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.status
}

// run uploads until ctx ends: first what an earlier kip left in the
// directory, then each recording as it is finished.
func (u *uploads) run(ctx context.Context) {
	u.queueLeftovers(u.now())
	backoff := u.minBackoff
	for {
		err := u.pass(ctx)
		if ctx.Err() != nil {
			return
		}
		u.setStatus(err)
		wait := u.probeEvery
		if err != nil {
			klog.ErrorS(err, "Uploading session recordings failed; they stay on disk and are tried again", "retryIn", backoff)
			wait, backoff = backoff, min(2*backoff, u.maxBackoff)
		} else {
			backoff = u.minBackoff
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-u.wake:
			timer.Stop()
		case <-timer.C:
		}
	}
}

// pass uploads the public keys until they are, then every pending
// recording, stopping at the first failure. With nothing to upload it
// probes the bucket.
func (u *uploads) pass(ctx context.Context) error {
	if !u.keysUploaded() {
		if err := u.uploadKeys(ctx); err != nil {
			u.metrics.Failed(metrics.StageUpload)
			return err
		}
		u.mu.Lock()
		u.keysDone = true
		u.mu.Unlock()
	}
	queue := u.queue()
	if len(queue) == 0 {
		return u.bucket.probe(ctx)
	}
	for _, rel := range queue {
		if err := u.upload(ctx, rel); err != nil {
			if ctx.Err() == nil {
				u.metrics.Failed(metrics.StageUpload)
			}
			return err
		}
	}
	return nil
}

func (u *uploads) keysUploaded() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.keysDone
}

// queue is the pending recordings, oldest day first.
func (u *uploads) queue() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	q := make([]string, 0, len(u.pending))
	for rel := range u.pending {
		q = append(q, rel)
	}
	slices.Sort(q)
	return q
}

func (u *uploads) setStatus(err error) {
	u.mu.Lock()
	u.status = err
	u.mu.Unlock()
	u.metrics.SetStorageUp(metrics.StoreBucket, err == nil)
}

// uploadKeys uploads every public key in root/keys: a recording kip
// sealed with an earlier key still needs that key to be verified.
func (u *uploads) uploadKeys(ctx context.Context) error {
	keys, err := filepath.Glob(filepath.Join(u.root, "keys", "*.pub"))
	if err != nil {
		return err
	}
	for _, path := range keys {
		if err := u.putFile(ctx, path, "keys/"+filepath.Base(path), keyContentType); err != nil {
			return err
		}
	}
	return nil
}

// upload puts the recording rel into the bucket, then deletes it from
// disk: never before the bucket answered that it holds it.
func (u *uploads) upload(ctx context.Context, rel string) error {
	path := filepath.Join(u.root, rel)
	err := u.putFile(ctx, path, filepath.ToSlash(rel), castContentType)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Removed by hand, or uploaded by an earlier kip that was
		// stopped before it could say so: nothing left to do.
	case err != nil:
		return err
	default:
		if err := os.Remove(path); err != nil {
			klog.ErrorS(err, "Removing an uploaded recording", "path", path)
		}
	}
	u.mu.Lock()
	delete(u.pending, rel)
	n := len(u.pending)
	u.mu.Unlock()
	u.metrics.SetUploadsPending(n)
	return nil
}

func (u *uploads) putFile(ctx context.Context, path, rel, contentType string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	return u.bucket.put(ctx, rel, f, fi.Size(), contentType)
}

// recordingPath matches what Dir writes: <yyyy-mm-dd>/<session>.cast.
var recordingPath = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}/[A-Za-z0-9][A-Za-z0-9_-]{0,127}\.cast$`)

// queueLeftovers queues the recordings an earlier kip left in the
// directory: it stopped before it could upload them, or the bucket was
// down. Only files last written before start are taken, and none this kip
// is writing, so a session that began meanwhile is left to finish.
func (u *uploads) queueLeftovers(start time.Time) {
	var found []string
	err := filepath.WalkDir(u.root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(u.root, path)
		if d.IsDir() {
			if path != u.root && strings.Count(filepath.ToSlash(rel), "/") > 0 {
				return filepath.SkipDir
			}
			return nil
		}
		if !recordingPath.MatchString(filepath.ToSlash(rel)) {
			return nil
		}
		if fi, err := d.Info(); err != nil || !fi.ModTime().Before(start) {
			return nil //nolint:nilerr // a file that vanished or is new is not a leftover
		}
		found = append(found, rel)
		return nil
	})
	if err != nil {
		klog.ErrorS(err, "Looking for recordings left to upload", "dir", u.root)
	}
	u.mu.Lock()
	for _, rel := range found {
		if !u.open[filepath.Join(u.root, rel)] {
			u.pending[rel] = true
		}
	}
	n := len(u.pending)
	u.mu.Unlock()
	u.metrics.SetUploadsPending(n)
	if len(found) > 0 {
		klog.InfoS("Uploading recordings left by an earlier kip", "count", len(found), "bucket", u.bucket.String())
	}
}
