package sessions

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kip-proxy/kip/internal/metrics"
	"github.com/kip-proxy/kip/internal/metrics/metricstest"
)

func TestReady(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, d *Dir)
		wantErr string // empty: ready
	}{
		{name: "a writable directory without a bucket", setup: func(*testing.T, *Dir) {}},
		{name: "a directory short of space", setup: func(_ *testing.T, d *Dir) { d.minFree = 1 << 62 },
			wantErr: "free space or give it a larger volume"},
		{name: "a directory that is gone", setup: func(t *testing.T, d *Dir) {
			if err := os.RemoveAll(d.root); err != nil {
				t.Fatal(err)
			}
		}, wantErr: "not writable"},
		{name: "a bucket not checked yet", setup: func(_ *testing.T, d *Dir) {
			d.uploads = newUploads(d.root, newFakeBucket(), nil)
		}, wantErr: "not been checked yet"},
		{name: "a bucket that failed its last upload", setup: func(_ *testing.T, d *Dir) {
			d.uploads = newUploads(d.root, newFakeBucket(), nil)
			d.uploads.setStatus(errBucketDown)
		}, wantErr: errBucketDown.Error()},
		{name: "a bucket that answered", setup: func(_ *testing.T, d *Dir) {
			d.uploads = newUploads(d.root, newFakeBucket(), nil)
			d.uploads.setStatus(nil)
		}},
		{name: "a full directory and a bucket that answered", setup: func(_ *testing.T, d *Dir) {
			d.uploads = newUploads(d.root, newFakeBucket(), nil)
			d.uploads.setStatus(nil)
			d.minFree = 1 << 62
		}, wantErr: "less than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := GenerateKey()
			if err != nil {
				t.Fatal(err)
			}
			d, err := NewDir(t.TempDir(), key)
			if err != nil {
				t.Fatal(err)
			}
			tt.setup(t, d)
			err = d.Ready(context.Background())
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Ready: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Ready = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// Ready looks at the directory at most once a second, and its gauge says
// what it saw.
func TestReadyLooksOncePerSecond(t *testing.T) {
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.NewRecorder()
	d, err := NewDir(t.TempDir(), key, WithMetrics(m.Recordings()))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	d.now = func() time.Time { return now }
	if err := d.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := metricstest.Value(t, m, `kip_recording_storage_up{store="dir"}`); got != "1" {
		t.Errorf("dir up = %s, want 1", got)
	}
	d.minFree = 1 << 62
	now = now.Add(500 * time.Millisecond)
	if err := d.Ready(context.Background()); err != nil {
		t.Fatalf("Ready looked again within a second: %v", err)
	}
	now = now.Add(600 * time.Millisecond)
	if err := d.Ready(context.Background()); err == nil {
		t.Fatal("Ready did not look again after a second")
	}
	if got := metricstest.Value(t, m, `kip_recording_storage_up{store="dir"}`); got != "0" {
		t.Errorf("dir up = %s, want 0", got)
	}
}
