package objectstore

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// The server keeps its objects across a stop, and refuses connections
// while stopped, as the "bucket down" tests need. The first run builds
// versitygw, which takes minutes.
func TestServerStopsAndRestartsWithItsObjects(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts versitygw")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := StartForTest(t, "recordings")
	client, err := s.Client()
	if err != nil {
		t.Fatal(err)
	}
	put := func() error {
		body := []byte("hello")
		_, err := client.PutObject(ctx, s.Bucket, "a/b.cast", bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{})
		return err
	}
	if err := put(); err != nil {
		t.Fatalf("PutObject: %v; %s", err, s.LogTail())
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	shortCtx, cancelShort := context.WithTimeout(ctx, 5*time.Second)
	defer cancelShort()
	if _, err := client.BucketExists(shortCtx, s.Bucket); err == nil {
		t.Fatal("the stopped server still answered")
	}
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	obj, err := client.GetObject(ctx, s.Bucket, "a/b.cast", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = obj.Close() }()
	got, err := io.ReadAll(obj)
	if err != nil || string(got) != "hello" {
		t.Fatalf("after a restart the object holds %q, %v; want hello", got, err)
	}
}
