package sessions

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/audit"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/kip-proxy/kip/internal/metrics"
	"github.com/kip-proxy/kip/internal/metrics/metricstest"
	"github.com/kip-proxy/kip/internal/recording"
)

// fakeBucket is an objectStore in memory that can be taken down.
type fakeBucket struct {
	mu      sync.Mutex
	objects map[string][]byte
	down    bool
	puts    int // attempts, failed or not
	probed  int
}

var errBucketDown = errors.New("connection refused")

func newFakeBucket() *fakeBucket { return &fakeBucket{objects: map[string][]byte{}} }

func (b *fakeBucket) put(_ context.Context, rel string, body io.Reader, size int64, _ string) error {
	data, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.puts++
	if b.down {
		return errBucketDown
	}
	if int64(len(data)) != size {
		return errors.New("short body")
	}
	b.objects[rel] = data
	return nil
}

func (b *fakeBucket) probe(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probed++
	if b.down {
		return errBucketDown
	}
	return nil
}

func (b *fakeBucket) String() string { return "s3://fake" }

func (b *fakeBucket) setDown(down bool) {
	b.mu.Lock()
	b.down = down
	b.mu.Unlock()
}

func (b *fakeBucket) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.objects)
}

func (b *fakeBucket) probes() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.probed
}

func (b *fakeBucket) attempts() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.puts
}

func (b *fakeBucket) object(rel string) ([]byte, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	data, ok := b.objects[rel]
	return data, ok
}

// uploadingDir is a Dir in a temporary directory uploading to bucket,
// fast, counting into the returned metrics.
func uploadingDir(t *testing.T, bucket objectStore) (*Dir, *metrics.Recorder) {
	t.Helper()
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.NewRecorder()
	d, err := NewDir(t.TempDir(), key, WithMetrics(m.Recordings()))
	if err != nil {
		t.Fatal(err)
	}
	d.uploads = newUploads(d.root, bucket, m.Recordings())
	d.uploads.minBackoff, d.uploads.maxBackoff, d.uploads.probeEvery = 10*time.Millisecond, 40*time.Millisecond, 20*time.Millisecond
	return d, m
}

// run runs d until the test ends.
func run(t *testing.T, d *Dir) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Dir.Run did not return after its context ended")
		}
	})
}

// openSession opens the recording of an exec by alice with audit ID id.
func openSession(t *testing.T, d *Dir, id string) (*file, string) {
	t.Helper()
	r := httptest.NewRequest("GET", "/api/v1/namespaces/ns/pods/pod/exec?command=id", nil)
	ctx := audit.WithAuditContext(r.Context())
	audit.WithAuditID(ctx, types.UID(id))
	ctx = request.WithRequestInfo(ctx, &request.RequestInfo{IsResourceRequest: true, Verb: "create",
		Resource: "pods", Subresource: "exec", Namespace: "ns", Name: "pod"})
	ctx = request.WithUser(ctx, &user.DefaultInfo{Name: "alice"})
	rec, err := d.Open(r.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	f := rec.(*file)
	f.Event(recording.Event{Time: time.Now(), Stream: recording.StreamStdout, Data: []byte("uid=0\n")})
	rel, _ := filepath.Rel(d.root, f.f.Name())
	return f, filepath.ToSlash(rel)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// A recording goes to the bucket once sealed, and leaves the disk only
// then; while the bucket is down it stays, each attempt counted, and is
// uploaded when the bucket is back.
func TestUploadsRetryAndDeleteOnlyOnceUploaded(t *testing.T) {
	bucket := newFakeBucket()
	d, m := uploadingDir(t, bucket)
	run(t, d)
	eventually(t, "the bucket was found up", func() bool { return d.Ready(context.Background()) == nil })

	f, rel := openSession(t, d, "s1")
	path := f.f.Name()
	eventually(t, "a probe ran while the session was open", func() bool { return bucket.probes() > 0 })
	if _, ok := bucket.object(rel); ok {
		t.Fatal("a recording still being written was uploaded")
	}
	bucket.setDown(true)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "two failed attempts were counted", func() bool {
		n, _ := strconv.Atoi(metricstest.Value(t, m, `kip_recording_failures_total{stage="upload"}`))
		return n >= 2
	})
	if !exists(path) {
		t.Fatal("the recording was deleted while the bucket was down")
	}
	if got := metricstest.Value(t, m, `kip_recording_uploads_pending`); got != "1" {
		t.Errorf("uploads pending = %s, want 1", got)
	}
	if got := metricstest.Value(t, m, `kip_recording_storage_up{store="bucket"}`); got != "0" {
		t.Errorf("bucket up = %s, want 0", got)
	}
	if d.Ready(context.Background()) == nil {
		t.Error("Ready while the bucket is down")
	}

	bucket.setDown(false)
	eventually(t, "the recording was uploaded", func() bool { _, ok := bucket.object(rel); return ok })
	eventually(t, "the recording left the disk", func() bool { return !exists(path) })
	got, _ := bucket.object(rel)
	pub, err := ReadPublicKey(d.PublicKeyFile())
	if err != nil {
		t.Fatal(err)
	}
	if err := recording.Verify(bytes.NewReader(got), pub); err != nil {
		t.Errorf("the uploaded recording does not verify: %v", err)
	}
	if _, ok := bucket.object("keys/" + filepath.Base(d.PublicKeyFile())); !ok {
		t.Error("the public key was not uploaded")
	}
	if !exists(d.PublicKeyFile()) {
		t.Error("the public key left the disk; kip keeps it")
	}
	eventually(t, "the gauges recovered", func() bool {
		return metricstest.Value(t, m, `kip_recording_uploads_pending`) == "0" &&
			metricstest.Value(t, m, `kip_recording_storage_up{store="bucket"}`) == "1"
	})
	if d.Ready(context.Background()) != nil {
		t.Errorf("not Ready once the bucket is back: %v", d.Ready(context.Background()))
	}
}

// At start, what an earlier kip left in the directory is uploaded: every
// recording, sealed or not, and nothing else.
func TestUploadsTakeLeftoversAtStart(t *testing.T) {
	bucket := newFakeBucket()
	d, _ := uploadingDir(t, bucket)
	old := time.Now().Add(-time.Hour)
	write := func(rel, data string) string {
		path := filepath.Join(d.root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, old, old); err != nil {
			t.Fatal(err)
		}
		return path
	}
	sealed := write("2026-12-01/crashed.cast", "{\"version\":2}\n[0.1, \"o\", \"x\"]\n")
	unsealed := write("2026-12-02/unsealed.cast", "{\"version\":2}\n")
	stray := write("2026-12-02/notes.txt", "not a recording")
	probe := write(".ready-123", "")
	deep := write("2026-12-02/sub/deep.cast", "not where kip writes")

	run(t, d)
	for _, rel := range []string{"2026-12-01/crashed.cast", "2026-12-02/unsealed.cast"} {
		eventually(t, rel+" was uploaded", func() bool { _, ok := bucket.object(rel); return ok })
	}
	eventually(t, "the leftovers left the disk", func() bool { return !exists(sealed) && !exists(unsealed) })
	for _, path := range []string{stray, probe, deep} {
		if !exists(path) {
			t.Errorf("%s was taken, but kip did not write it", path)
		}
	}
	if n := bucket.count(); n != 3 { // the two and the public key
		t.Errorf("bucket holds %d objects, want 3", n)
	}
}

// A session that began after kip started is not a leftover, even if its
// file is old enough to be taken for one: it is uploaded when it ends.
func TestUploadsLeaveOpenRecordings(t *testing.T) {
	bucket := newFakeBucket()
	d, _ := uploadingDir(t, bucket)
	f, rel := openSession(t, d, "still-open")
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(f.f.Name(), old, old); err != nil {
		t.Fatal(err)
	}
	run(t, d)
	eventually(t, "the keys were uploaded", func() bool { return bucket.attempts() > 0 })
	time.Sleep(50 * time.Millisecond)
	if _, ok := bucket.object(rel); ok {
		t.Fatal("a recording being written was uploaded as a leftover")
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the recording was uploaded once closed", func() bool { _, ok := bucket.object(rel); return ok })
}
