package load

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Batch is a closed loop: Concurrency workers send GETs of Path back to
// back until Requests have been sent, Duration has passed, or ctx ends.
type Batch struct {
	Target *Target
	Path   string
	Header http.Header
	// Send, when set, is sent instead of the GET: one whole request and
	// its response, for workloads that are not GETs.
	Send        func(context.Context) error
	Requests    int
	Concurrency int
	// Duration bounds the batch; 0 means no bound but Requests.
	Duration time.Duration
}

// Sample is what one batch saw.
type Sample struct {
	Latencies []time.Duration
	Elapsed   time.Duration
	Errors    int
	FirstErr  error
}

// Run runs b and returns every request's latency. Failed requests count as
// errors and have no latency.
func Run(ctx context.Context, b Batch) Sample {
	if b.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.Duration)
		defer cancel()
	}
	var (
		next    atomic.Int64
		mu      sync.Mutex
		sample  Sample
		workers sync.WaitGroup
	)
	start := time.Now()
	for range b.Concurrency {
		workers.Go(func() {
			lat, errs, first := worker(ctx, b, &next)
			mu.Lock()
			defer mu.Unlock()
			sample.Latencies = append(sample.Latencies, lat...)
			sample.Errors += errs
			if sample.FirstErr == nil {
				sample.FirstErr = first
			}
		})
	}
	workers.Wait()
	sample.Elapsed = time.Since(start)
	return sample
}

func worker(ctx context.Context, b Batch, next *atomic.Int64) (lat []time.Duration, errs int, first error) {
	send := b.Send
	if send == nil {
		send = func(ctx context.Context) error {
			_, err := Get(ctx, b.Target, b.Path, b.Header)
			return err
		}
	}
	for next.Add(1) <= int64(b.Requests) && ctx.Err() == nil {
		start := time.Now()
		err := send(ctx)
		if ctx.Err() != nil {
			break // cut off by the batch's time bound, not a failure
		}
		if err != nil {
			errs++
			if first == nil {
				first = err
			}
			continue
		}
		lat = append(lat, time.Since(start))
	}
	return lat, errs, first
}

// Response is what Get read.
type Response struct {
	Bytes           int64
	ContentEncoding string
}

// Get sends one GET of path to t and reads the body to its end. Anything
// but 200 OK is an error.
func Get(ctx context.Context, t *Target, path string, header http.Header) (Response, error) {
	req, err := t.NewRequest(ctx, path, header)
	if err != nil {
		return Response{}, err
	}
	resp, err := t.Client.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return Response{}, fmt.Errorf("reading %s from %s: %w", path, t.Name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return Response{}, fmt.Errorf("GET %s on %s: %s", path, t.Name, resp.Status)
	}
	return Response{Bytes: n, ContentEncoding: resp.Header.Get("Content-Encoding")}, nil
}
