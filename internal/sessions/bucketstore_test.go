//go:build linux

// The bucket tests run versitygw under the rig's child-process control,
// which is Linux's alone (Pdeathsig), as CI is.

package sessions

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/kip-proxy/kip/internal/rig/objectstore"
)

// countingTransport counts the GETs of objects (not listings) it carries.
type countingTransport struct {
	http.RoundTripper
	gets atomic.Int32
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodGet && r.Header.Get("Range") != "" {
		c.gets.Add(1)
	}
	return c.RoundTripper.RoundTrip(r)
}

// TestBucketStore uploads real recordings to versitygw and reads them
// back: listed newest first with what their headers and seals say, each
// object read with ranged GETs once and from the cache afterwards, and
// opened whole by session ID. The first run builds versitygw, which takes
// minutes.
func TestBucketStore(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts versitygw")
	}
	s3 := objectstore.StartForTest(t, "recordings")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	counting := &countingTransport{RoundTripper: http.DefaultTransport}
	client, err := minio.New(strings.TrimPrefix(s3.Endpoint, "http://"), &minio.Options{
		Creds: credentials.NewStaticV4(objectstore.AccessKey, objectstore.SecretKey, ""), Region: objectstore.Region,
		Transport: counting,
	})
	if err != nil {
		t.Fatal(err)
	}
	b := &Bucket{client: client, name: s3.Bucket, prefix: "team/kip", where: "s3://recordings/team/kip"}

	d, _ := uploadingDir(t, b)
	run(t, d)
	first, firstRel := openSession(t, d, "first")
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // the second starts later
	second, secondRel := openSession(t, d, "second")
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "both were uploaded", func() bool { return !exists(first.f.Name()) && !exists(second.f.Name()) })

	store := NewBucketStore(b)
	list, err := store.List(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].SessionID != "second" || list[1].SessionID != "first" {
		t.Fatalf("listed %+v, want second then first", list)
	}
	fp, _ := Fingerprint(d.signer.Public())
	for _, s := range list {
		if !s.Sealed || s.SealKey != "sha256:"+fp || s.User != "alice" || s.Subresource != "exec" ||
			s.Store != "bucket" || s.Size == 0 || s.End.Before(s.Start) {
			t.Errorf("summary %+v does not say what the recording does", s)
		}
	}
	gets := counting.gets.Load()
	if gets != 4 {
		t.Errorf("the first listing made %d ranged GETs, want 2 per recording", gets)
	}
	if _, err := store.List(ctx, Filter{}); err != nil {
		t.Fatal(err)
	}
	if again := counting.gets.Load() - gets; again != 0 {
		t.Errorf("listing unchanged objects again made %d ranged GETs, want none", again)
	}

	for _, tt := range []struct {
		name string
		f    Filter
		want []string
	}{
		{"limit", Filter{Limit: 1}, []string{"second"}},
		{"another user", Filter{User: "bob"}, nil},
		{"the pod", Filter{Namespace: "ns", Pod: "pod"}, []string{"second", "first"}},
		{"since tomorrow", Filter{Since: time.Now().Add(24 * time.Hour)}, nil},
		{"until yesterday", Filter{Until: time.Now().Add(-24 * time.Hour)}, nil},
	} {
		got, err := store.List(ctx, tt.f)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, s := range got {
			ids = append(ids, s.SessionID)
		}
		if strings.Join(ids, ",") != strings.Join(tt.want, ",") {
			t.Errorf("%s: listed %v, want %v", tt.name, ids, tt.want)
		}
	}

	rc, sum, err := store.Open(ctx, "first")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	_ = rc.Close()
	want, _ := readObject(ctx, client, s3.Bucket, "team/kip/"+firstRel)
	if sum.SessionID != "first" || !bytes.Equal(got, want) || len(got) == 0 {
		t.Errorf("Open(first) = %d bytes, %+v; want the uploaded recording", len(got), sum)
	}
	for _, id := range []string{"missing", "../team/kip/" + secondRel, ""} {
		if _, _, err := store.Open(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Open(%q) = %v, want ErrNotFound", id, err)
		}
	}
}

func readObject(ctx context.Context, client *minio.Client, bucket, key string) ([]byte, error) {
	obj, err := client.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, err
	}
	defer func() { _ = obj.Close() }()
	return io.ReadAll(obj)
}
