package ratelimit

import (
	"net/netip"
	"sync"
	"time"

	"k8s.io/utils/clock"
	"k8s.io/utils/lru"
)

// Failures is a token bucket of failures per client address. It is kip's
// own rather than golang.org/x/time/rate's Limiter because a unit is taken
// before a credential check and given back when the check did not fail,
// and a Limiter cannot give a unit back once its clock has moved on.
type Failures struct {
	burst    float64
	interval time.Duration
	clock    clock.PassiveClock

	// mu makes taking and giving back atomic with finding the bucket.
	mu sync.Mutex
	// buckets holds only addresses with a unit out: a full bucket is
	// dropped, so the table is bounded by failing clients, and by its size.
	buckets *lru.Cache
}

// bucket is one address's budget: units, as of a time.
type bucket struct {
	units float64
	at    time.Time
}

// NewFailures allows each client burst failures in a row, and one more
// every interval; it keeps at most maxClients budgets.
func NewFailures(burst int, interval time.Duration, maxClients int, c clock.PassiveClock) *Failures {
	return &Failures{burst: float64(burst), interval: interval, clock: c, buckets: lru.New(maxClients)}
}

// Take spends one unit of client's budget, or says how long until there is
// one.
func (l *Failures) Take(client string) (wait time.Duration, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	b := l.bucket(client, now)
	if b.units < 1 {
		return time.Duration((1 - b.units) * float64(l.interval)), false
	}
	b.units--
	l.buckets.Add(client, b)
	return 0, true
}

// Refund gives back the unit a request took when it did not fail.
func (l *Failures) Refund(client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	value, found := l.buckets.Get(client)
	if !found {
		// Evicted meanwhile: a missing bucket is a full one.
		return
	}
	b := value.(*bucket)
	l.refill(b, l.clock.Now())
	b.units++
	if b.units >= l.burst {
		l.buckets.Remove(client)
	}
}

// bucket returns client's bucket filled up to now; a new one is full.
func (l *Failures) bucket(client string, now time.Time) *bucket {
	if value, found := l.buckets.Get(client); found {
		b := value.(*bucket)
		l.refill(b, now)
		return b
	}
	return &bucket{units: l.burst, at: now}
}

func (l *Failures) refill(b *bucket, now time.Time) {
	if elapsed := now.Sub(b.at); elapsed > 0 {
		b.units = min(l.burst, b.units+float64(elapsed)/float64(l.interval))
		b.at = now
	}
}

// ClientKey is the address a failure budget belongs to: the connection's
// own peer, never a header the caller could write. An IPv6 client usually
// holds a whole /64, so that is the key, not one of its addresses.
func ClientKey(remoteAddr string) string {
	addrPort, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		// Not an IP peer (a Unix socket, a test): all such callers share.
		return remoteAddr
	}
	addr := addrPort.Addr().WithZone("").Unmap()
	if addr.Is4() {
		return addr.String()
	}
	prefix, err := addr.Prefix(64)
	if err != nil {
		return addr.String()
	}
	return prefix.String()
}
