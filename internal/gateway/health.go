package gateway

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// Backoff bounds how long a cluster that failed is refused before kip
// contacts it again: long enough that a dead cluster costs its callers a
// fast 503 rather than a dial timeout each, short enough that a cluster
// that comes back is served again within seconds.
const (
	firstBackoff = 500 * time.Millisecond
	maxBackoff   = 8 * time.Second
)

// Health is what kip knows of one cluster's reachability. The proxy
// reports each upstream response and each failed round trip to it; while
// the cluster is down its requests fail fast, and one request at a time,
// once per backoff, contacts it again.
type Health struct {
	name    string
	observe Observer
	up      atomic.Bool // the fast path of every forwarded request

	mu      sync.Mutex
	state   string // "idle", "up" or "down"
	err     error
	retryAt time.Time
	backoff time.Duration
}

func newHealth(name string, observe Observer) *Health {
	return &Health{name: name, observe: observe, state: "idle", backoff: firstBackoff}
}

// admission is what a request to the cluster may do.
type admission int

const (
	pass   admission = iota // the cluster is up
	check                   // contact the cluster first
	refuse                  // the cluster is down: fail fast
)

// admit decides for one request. A cluster never contacted is checked by
// every request until one check succeeds (the check itself runs once at a
// time); a cluster that is down is checked by one request per backoff,
// and refused to the others.
func (h *Health) admit() (admission, error) {
	if h.up.Load() {
		return pass, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.state == "up":
		return pass, nil
	case h.state == "idle":
		return check, nil
	case time.Now().Before(h.retryAt):
		return refuse, h.err
	}
	h.retryAt = time.Now().Add(h.backoff)
	return check, nil
}

// Succeeded records an answer from the cluster.
func (h *Health) Succeeded() {
	if h.up.Load() {
		return
	}
	h.mu.Lock()
	h.state, h.err, h.backoff = "up", nil, firstBackoff
	h.up.Store(true)
	h.mu.Unlock()
	h.observe.Up(h.name, true)
}

// Failed records that the cluster could not be reached or did not answer.
func (h *Health) Failed(err error) {
	if err == nil {
		err = errors.New("the cluster did not answer")
	}
	h.mu.Lock()
	if h.state == "down" {
		h.backoff = min(2*h.backoff, maxBackoff)
	}
	h.state, h.err = "down", err
	h.retryAt = time.Now().Add(h.backoff)
	h.up.Store(false)
	h.mu.Unlock()
	h.observe.Up(h.name, false)
}

func (h *Health) status(name string) Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	return Status{Name: name, State: h.state, Err: h.err}
}
