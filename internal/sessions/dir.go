package sessions

import (
	"crypto"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apiserver/pkg/audit"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/kip-proxy/kip/internal/caller"
	"github.com/kip-proxy/kip/internal/gateway"
	"github.com/kip-proxy/kip/internal/metrics"
	"github.com/kip-proxy/kip/internal/proxy"
	"github.com/kip-proxy/kip/internal/recording"
)

// Dir writes each session's recording to <root>/<yyyy-mm-dd>/<session>.cast,
// and, given a bucket, uploads each once it is finished.
type Dir struct {
	root      string
	signer    crypto.Signer
	replica   string
	publicKey string
	now       func() time.Time

	metrics *metrics.Recordings
	bucket  *Bucket
	// uploads is nil without a bucket.
	uploads *uploads
	// minFree is the free space below which the directory is not ready.
	minFree uint64

	readyMu  sync.Mutex
	readyAt  time.Time
	readyErr error
}

var _ proxy.Recorder = (*Dir)(nil)

// Option configures a Dir.
type Option func(*Dir)

// WithMetrics makes the Dir count its recordings and failures into m.
func WithMetrics(m *metrics.Recordings) Option { return func(d *Dir) { d.metrics = m } }

// WithBucket makes the Dir upload each finished recording to b, and then
// delete it from disk; see Run.
func WithBucket(b *Bucket) Option { return func(d *Dir) { d.bucket = b } }

// NewDir returns a Dir that seals recordings with signer, creating root
// and writing signer's public key under root/keys.
func NewDir(root string, signer crypto.Signer, opts ...Option) (*Dir, error) {
	if root == "" {
		return nil, errors.New("recordings need a directory")
	}
	if signer == nil {
		return nil, errors.New("recordings need a key to seal them")
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("creating the recording directory: %w", err)
	}
	pub, err := writePublicKey(root, signer.Public())
	if err != nil {
		return nil, err
	}
	replica, err := os.Hostname()
	if err != nil {
		replica = ""
	}
	d := &Dir{root: root, signer: signer, replica: replica, publicKey: pub, now: time.Now, minFree: defaultMinFree}
	for _, opt := range opts {
		opt(d)
	}
	if d.bucket != nil {
		d.uploads = newUploads(root, d.bucket, d.metrics)
	}
	return d, nil
}

// PublicKeyFile is the file that verifies this Dir's recordings.
func (d *Dir) PublicKeyFile() string { return d.publicKey }

// AuditAnnotation is the annotation of kip's audit event for an exec,
// attach or port-forward that names its recording's session ID, so one
// can go from the audit log to the recording.
const AuditAnnotation = "kip.dev/recording"

// Open creates the recording of the session r asked for, and names it in
// the request's audit event.
func (d *Dir) Open(r *http.Request) (proxy.Recording, error) {
	h, err := d.header(r)
	if err != nil {
		d.metrics.Failed(metrics.StageOpen)
		return nil, err
	}
	rec, err := d.open(&h)
	if err != nil {
		d.metrics.Failed(metrics.StageOpen)
		// The next Ready looks again rather than trust a second-old yes.
		d.forgetReady()
		return nil, err
	}
	d.metrics.Recorded(h.Identity.Subresource)
	// Before the upgrade's 101 goes out, so that the ResponseStarted event
	// of a long-running request carries it too.
	audit.AddAuditAnnotation(r.Context(), AuditAnnotation, h.Identity.SessionID)
	return rec, nil
}

func (d *Dir) open(h *recording.Header) (*file, error) {
	f, err := d.create(h)
	if err != nil {
		return nil, err
	}
	if d.uploads != nil {
		d.uploads.opened(f.Name())
	}
	w, err := recording.NewWriter(f, *h, d.signer)
	if err != nil {
		_ = f.Close()
		// What was begun is evidence that the session happened: it
		// goes to the bucket like any finished recording.
		if d.uploads != nil {
			d.uploads.finished(f.Name())
		}
		return nil, fmt.Errorf("starting the recording %s: %w", f.Name(), err)
	}
	return &file{Writer: w, f: f, dir: d}, nil
}

// header is the session as the chain authenticated and routed it.
func (d *Dir) header(r *http.Request) (recording.Header, error) {
	ctx := r.Context()
	u, ok := request.UserFrom(ctx)
	if !ok || u == nil {
		return recording.Header{}, errors.New("no authenticated user for the session")
	}
	info, ok := request.RequestInfoFrom(ctx)
	if !ok {
		return recording.Header{}, errors.New("no request info for the session")
	}
	q := r.URL.Query()
	tty, _ := strconv.ParseBool(q.Get("tty"))
	id := recording.Identity{
		User: u.GetName(), UID: u.GetUID(), Groups: u.GetGroups(),
		Namespace: info.Namespace, Pod: info.Name, Subresource: info.Subresource,
		Container: q.Get("container"), Command: q["command"],
		Replica: d.replica, AuditID: audit.GetAuditIDTruncated(ctx),
	}
	if original, ok := caller.OriginalUserFrom(ctx); ok && original != nil && original.GetName() != u.GetName() {
		id.Caller = original.GetName()
	}
	id.Cluster, _ = gateway.ClusterFrom(ctx)
	return recording.Header{Identity: id, TTY: tty, Start: d.now()}, nil
}

// plainName is what an audit ID must look like to name a file.
var plainName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$`)

// create makes the session's file, named by its audit ID when that is a
// plain name not yet taken, else by a random UUID; h's SessionID says
// which. Never an existing file: O_EXCL.
func (d *Dir) create(h *recording.Header) (*os.File, error) {
	day := filepath.Join(d.root, h.Start.UTC().Format(time.DateOnly))
	if err := os.MkdirAll(day, 0o700); err != nil {
		return nil, fmt.Errorf("creating the recording directory: %w", err)
	}
	names := []string{string(uuid.NewUUID())}
	if plainName.MatchString(h.Identity.AuditID) {
		names = append([]string{h.Identity.AuditID}, names...)
	}
	var err error
	for _, name := range names {
		var f *os.File
		f, err = os.OpenFile(filepath.Join(day, name+".cast"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			h.Identity.SessionID = name
			return f, nil
		}
	}
	return nil, fmt.Errorf("creating the recording file: %w", err)
}

// file is a recording and the file it goes to; Close seals and closes it.
type file struct {
	*recording.Writer
	f   *os.File
	dir *Dir
}

// Close seals the recording, counts what failed, and hands the file to
// the uploads, sealed or not: a partial recording is still evidence.
func (f *file) Close() error {
	writeErr := f.Err()
	err := f.Writer.Close()
	if serr := f.f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.f.Close(); err == nil {
		err = cerr
	}
	switch {
	case writeErr != nil:
		f.dir.metrics.Failed(metrics.StageWrite)
	case err != nil:
		f.dir.metrics.Failed(metrics.StageSeal)
	}
	if err != nil {
		f.dir.forgetReady()
	}
	if f.dir.uploads != nil {
		f.dir.uploads.finished(f.f.Name())
	}
	return err
}
