package workload

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"sync"
	"time"

	"github.com/kip-proxy/kip/bench/internal/load"
)

// fanOut is a set of open watches through one target.
type fanOut struct {
	ctx    context.Context
	cancel context.CancelFunc
	target *load.Target
	path   string
	// arrived[i] is when watcher i saw the change; it is written by that
	// watcher alone, before it sends i on delivered.
	arrived   []time.Time
	delivered chan int
	wg        sync.WaitGroup

	settle   time.Duration // pause after closing, for the proxy to let go
	conns    sync.Map      // the connections watches went over, as keys
	started  int           // watchers started so far
	opened   int           // of those, how many got 200 OK
	firstErr error
}

func newFanOut(ctx context.Context, t *load.Target, path string, n int, settle time.Duration) *fanOut {
	ctx, cancel := context.WithCancel(ctx)
	return &fanOut{
		ctx: ctx, cancel: cancel, target: t, path: path, settle: settle,
		arrived: make([]time.Time, n), delivered: make(chan int, n),
	}
}

// openUpTo starts watchers until n have been started, at most openers at a
// time, and returns once each has its response headers or has failed.
func (f *fanOut) openUpTo(n int) {
	results := make(chan error, n-f.started)
	sem := make(chan struct{}, openers)
	count := 0
	for ; f.started < n; f.started++ {
		sem <- struct{}{}
		i := f.started
		count++
		f.wg.Go(func() { f.watch(i, func(err error) { <-sem; results <- err }) })
	}
	for range count {
		if err := <-results; err != nil {
			if f.firstErr == nil {
				f.firstErr = err
			}
		} else {
			f.opened++
		}
	}
}

// watch opens watch i, reports the outcome through opened, and records
// when the first change arrives. It reads on until the fan-out closes.
func (f *fanOut) watch(i int, opened func(error)) {
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { f.conns.Store(info.Conn, true) }}
	req, err := f.target.NewRequest(httptrace.WithClientTrace(f.ctx, trace), f.path, nil)
	if err != nil {
		opened(err)
		return
	}
	resp, err := f.target.Client.Do(req)
	if err != nil {
		opened(err)
		return
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		opened(fmt.Errorf("watch through %s: %s", f.target.Name, resp.Status))
		return
	}
	opened(nil)
	dec := json.NewDecoder(resp.Body)
	seen := false
	for {
		var event struct {
			Type string `json:"type"`
		}
		if err := dec.Decode(&event); err != nil {
			return
		}
		if event.Type == "MODIFIED" && !seen {
			seen = true
			f.arrived[i] = time.Now()
			f.delivered <- i
		}
	}
}

// connsUsed counts the connections the watches went over.
func (f *fanOut) connsUsed() int {
	n := 0
	f.conns.Range(func(any, any) bool { n++; return true })
	return n
}

// waitDelivered waits until every open watcher has seen the change, or
// timeout, and returns each delay from sent.
func (f *fanOut) waitDelivered(sent time.Time, timeout time.Duration) []time.Duration {
	deadline := time.After(timeout)
	var delays []time.Duration
	for len(delays) < f.opened {
		select {
		case i := <-f.delivered:
			delays = append(delays, f.arrived[i].Sub(sent))
		case <-deadline:
			return delays
		}
	}
	return delays
}

// close ends every watch and waits for the watchers to return, then drops
// the client's connections so the next round starts afresh.
func (f *fanOut) close() {
	f.cancel()
	f.wg.Wait()
	f.target.CloseIdle()
	time.Sleep(f.settle)
}
