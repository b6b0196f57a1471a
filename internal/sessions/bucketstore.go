package sessions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/kip-proxy/kip/internal/recording"
)

// The limits of what a listing reads of each object.
const (
	// maxHeaderLine bounds the ranged GET of a recording's first line; a
	// header is a few hundred bytes.
	maxHeaderLine = 64 << 10
	// tailBytes is the ranged GET of a recording's end, where its seal is.
	tailBytes = 16 << 10
)

// BucketStore lists and reads the recordings uploaded to a bucket. A
// listing reads each recording's header line and last lines with two
// ranged GETs, once: what they say is kept by object name and ETag, which
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
	err := s.each(ctx, func(obj minio.ObjectInfo, day, _ string) error {
		if !f.Since.IsZero() && day < f.Since.UTC().Format(time.DateOnly) ||
			!f.Until.IsZero() && day > f.Until.UTC().Format(time.DateOnly) {
			return nil
		}
		seen[obj.Key] = true
		sum, err := s.summaryOf(ctx, obj)
		if errors.Is(err, errNotRecording) {
			return nil
		}
		if err != nil {
			return err
		}
		if matches(f, sum) {
			out = append(out, sum)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.forgetUnseen(seen, f)
	slices.SortFunc(out, func(a, b Summary) int { return b.Start.Compare(a.Start) })
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
	sum, err := s.summaryOf(ctx, *found)
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
// unchanged.
func (s *BucketStore) summaryOf(ctx context.Context, obj minio.ObjectInfo) (Summary, error) {
	s.mu.Lock()
	c, ok := s.summary[obj.Key]
	s.mu.Unlock()
	if ok && c.etag == obj.ETag && obj.ETag != "" {
		return c.s, nil
	}
	if obj.Size == 0 {
		return Summary{}, fmt.Errorf("%w: %s is empty", errNotRecording, obj.Key)
	}
	head, err := s.getRange(ctx, obj.Key, 0, min(obj.Size, maxHeaderLine)-1)
	if err != nil {
		return Summary{}, err
	}
	line, _, ok := bytes.Cut(head, []byte("\n"))
	if !ok {
		return Summary{}, fmt.Errorf("%w: %s does not start with a recording's header line", errNotRecording, obj.Key)
	}
	sum, err := summaryFromHeader(line)
	if err != nil {
		return Summary{}, fmt.Errorf("%w: %s: %w", errNotRecording, obj.Key, err)
	}
	var tail []byte
	if obj.Size > int64(len(line))+1 {
		from := max(int64(len(line))+1, obj.Size-tailBytes)
		if tail, err = s.getRange(ctx, obj.Key, from, obj.Size-1); err != nil {
			return Summary{}, err
		}
	}
	sum.readSeal(tail)
	sum.Size, sum.Store = obj.Size, "bucket"
	s.mu.Lock()
	s.summary[obj.Key] = cachedSummary{etag: obj.ETag, s: sum}
	s.mu.Unlock()
	return sum, nil
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

// summaryFromHeader reads a recording's header line as kip writes it.
func summaryFromHeader(line []byte) (Summary, error) {
	var h struct {
		Version int `json:"version"`
		Kip     *struct {
			recording.Identity
			TTY   bool   `json:"tty"`
			Start string `json:"start"`
		} `json:"kip"`
	}
	if err := json.Unmarshal(line, &h); err != nil || h.Version != 2 || h.Kip == nil {
		return Summary{}, errors.New("its first line is not an asciicast v2 header with kip's identity")
	}
	start, err := time.Parse(time.RFC3339Nano, h.Kip.Start)
	if err != nil {
		return Summary{}, fmt.Errorf("its start time %q is not RFC 3339", h.Kip.Start)
	}
	return Summary{Identity: h.Kip.Identity, TTY: h.Kip.TTY, Start: start}, nil
}

// readSeal reads the seal from the last line of tail, the end of a
// recording; an unsealed recording keeps End zero.
func (sum *Summary) readSeal(tail []byte) {
	tail = bytes.TrimSuffix(tail, []byte("\n"))
	last := tail[bytes.LastIndexByte(tail, '\n')+1:]
	var ev []json.RawMessage
	var t float64
	var code, data string
	if json.Unmarshal(last, &ev) != nil || len(ev) != 3 || json.Unmarshal(ev[0], &t) != nil ||
		json.Unmarshal(ev[1], &code) != nil || json.Unmarshal(ev[2], &data) != nil || code != "kip-seal" {
		return
	}
	var seal struct {
		Key string `json:"key"`
	}
	if json.Unmarshal([]byte(data), &seal) != nil {
		return
	}
	sum.Sealed, sum.SealKey = true, seal.Key
	sum.End = sum.Start.Add(time.Duration(t * float64(time.Second)))
}

// matches says whether f selects sum.
func matches(f Filter, sum Summary) bool {
	return (f.User == "" || f.User == sum.User) &&
		(f.Cluster == "" || f.Cluster == sum.Cluster) &&
		(f.Namespace == "" || f.Namespace == sum.Namespace) &&
		(f.Pod == "" || f.Pod == sum.Pod) &&
		(f.Since.IsZero() || !sum.Start.Before(f.Since)) &&
		(f.Until.IsZero() || !sum.Start.After(f.Until))
}
