package sessions

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
)

// BucketStore lists and reads the recordings uploaded to a bucket. A
// listing reads each recording's header line and last lines with ranged
// GETs, once: what they say is kept by object name and ETag, which
// changes if the object does.
type BucketStore struct {
	bucket *Bucket

	mu      sync.Mutex
	summary map[string]cachedSummary // by object name
}

// errNotRecording marks an object that is named like a recording and is
// none: a listing leaves it out.
var errNotRecording = errors.New("not a kip session recording")

type cachedSummary struct {
	etag string
	s    Summary
}

var _ Store = (*BucketStore)(nil)

// NewBucketStore reads the recordings in b.
func NewBucketStore(b *Bucket) *BucketStore {
	return &BucketStore{bucket: b, summary: map[string]cachedSummary{}}
}

// List returns the recordings f selects, newest first. Days outside
// f.Since and f.Until are not listed at all.
func (s *BucketStore) List(ctx context.Context, f Filter) ([]Summary, error) {
	var out []Summary
	seen := map[string]bool{}
	err := s.each(ctx, func(obj minio.ObjectInfo, day, id string) error {
		if !f.Since.IsZero() && day < f.Since.UTC().Format(time.DateOnly) ||
			!f.Until.IsZero() && day > f.Until.UTC().Format(time.DateOnly) {
			return nil
		}
		seen[obj.Key] = true
		sum, err := s.summaryOf(ctx, obj, id)
		if errors.Is(err, errNotRecording) {
			return nil
		}
		if err != nil {
			return err
		}
		if f.Matches(sum) {
			out = append(out, sum)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.forgetUnseen(seen, f)
	SortNewestFirst(out)
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

// Open returns the recording of session id, whole.
func (s *BucketStore) Open(ctx context.Context, id string) (io.ReadCloser, Summary, error) {
	if !plainName.MatchString(id) {
		return nil, Summary{}, ErrNotFound
	}
	var found *minio.ObjectInfo
	err := s.each(ctx, func(obj minio.ObjectInfo, _, name string) error {
		if name == id && (found == nil || obj.Key > found.Key) {
			found = &obj
		}
		return nil
	})
	if err != nil {
		return nil, Summary{}, err
	}
	if found == nil {
		return nil, Summary{}, ErrNotFound
	}
	sum, err := s.summaryOf(ctx, *found, id)
	if err != nil {
		return nil, Summary{}, err
	}
	obj, err := s.bucket.client.GetObject(ctx, s.bucket.name, found.Key, minio.GetObjectOptions{})
	if err != nil {
		return nil, Summary{}, fmt.Errorf("reading %s from %s: %w", found.Key, s.bucket, err)
	}
	return obj, sum, nil
}

// each calls fn for every recording in the bucket, with the day and the
// session ID its name gives.
func (s *BucketStore) each(ctx context.Context, fn func(obj minio.ObjectInfo, day, id string) error) error {
	prefix := ""
	if s.bucket.prefix != "" {
		prefix = s.bucket.prefix + "/"
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the listing if fn stops early
	for obj := range s.bucket.client.ListObjects(ctx, s.bucket.name, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			if isNoSuchKey(obj.Err) {
				return nil
			}
			return fmt.Errorf("listing the recordings in %s: %w", s.bucket, obj.Err)
		}
		rel := strings.TrimPrefix(obj.Key, prefix)
		if !recordingPath.MatchString(rel) {
			continue
		}
		day, name := path.Split(rel)
		if err := fn(obj, strings.TrimSuffix(day, "/"), strings.TrimSuffix(name, ".cast")); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// summaryOf is what obj's header and end say, from the cache when obj is
// unchanged. It reads them as the directory's are read (SummaryOf), with
// a ranged GET for each piece instead of a read of a file.
func (s *BucketStore) summaryOf(ctx context.Context, obj minio.ObjectInfo, id string) (Summary, error) {
	s.mu.Lock()
	c, ok := s.summary[obj.Key]
	s.mu.Unlock()
	if ok && c.etag == obj.ETag && obj.ETag != "" {
		return c.s, nil
	}
	if obj.Size == 0 {
		return Summary{}, fmt.Errorf("%w: %s is empty", errNotRecording, obj.Key)
	}
	r := &rangeReader{ctx: ctx, s: s, key: obj.Key}
	sum, err := SummaryOf(r, obj.Size, id, "bucket")
	if r.err != nil {
		return Summary{}, r.err
	}
	if err != nil {
		return Summary{}, fmt.Errorf("%w: %s: %w", errNotRecording, obj.Key, err)
	}
	s.mu.Lock()
	s.summary[obj.Key] = cachedSummary{etag: obj.ETag, s: sum}
	s.mu.Unlock()
	return sum, nil
}

// rangeReader reads an object with a ranged GET per ReadAt. err keeps a
// failure of the bucket apart from a recording that cannot be read.
type rangeReader struct {
	ctx context.Context
	s   *BucketStore
	key string
	err error
}

func (r *rangeReader) ReadAt(p []byte, off int64) (int, error) {
	b, err := r.s.getRange(r.ctx, r.key, off, off+int64(len(p))-1)
	if err != nil {
		r.err = err
		return 0, err
	}
	n := copy(p, b)
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// getRange reads bytes from to end (inclusive) of key: one ranged GET.
func (s *BucketStore) getRange(ctx context.Context, key string, from, end int64) ([]byte, error) {
	var opts minio.GetObjectOptions
	if err := opts.SetRange(from, end); err != nil {
		return nil, err
	}
	obj, err := s.bucket.client.GetObject(ctx, s.bucket.name, key, opts)
	if err != nil {
		return nil, fmt.Errorf("reading %s from %s: %w", key, s.bucket, err)
	}
	defer func() { _ = obj.Close() }()
	b, err := io.ReadAll(io.LimitReader(obj, end-from+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s from %s: %w", key, s.bucket, err)
	}
	return b, nil
}

// forgetUnseen drops the cached summaries of objects a whole listing no
// longer found, so that the cache does not outgrow the bucket.
func (s *BucketStore) forgetUnseen(seen map[string]bool, f Filter) {
	if !f.Since.IsZero() || !f.Until.IsZero() {
		return // a partial listing says nothing of the other days
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for key := range s.summary {
		if !seen[key] {
			delete(s.summary, key)
		}
	}
}
