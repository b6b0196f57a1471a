package harness

import (
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Balancer is a TCP load balancer in front of kip replicas, as a cloud
// load balancer or a Service's proxy is: it knows nothing of HTTP or TLS.
// Each accepted connection goes to the next ready backend in turn; a
// backend that refuses the connection is skipped. A backend is ready while
// its /readyz, polled on the probe port, answers 200 (see probeFailures):
// kip fails /readyz as soon as it is told to stop, so the balancer stops
// sending it new connections, while those already open carry on until kip
// closes them.
type Balancer struct {
	ln       net.Listener
	backends []*backend
	next     atomic.Uint64
	done     chan struct{}
	wg       sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	// noBackend counts connections closed at once because no backend was
	// ready or every ready one refused.
	noBackend int
}

// backend is one kip replica as the balancer sees it.
type backend struct {
	// addr is kip's secure port; readyz its probe.
	addr, readyz string
	ready        atomic.Bool
	// accepted counts the connections the balancer sent it.
	accepted atomic.Int64
}

// How the balancer probes: every probeInterval it asks each backend's
// /readyz; a backend leaves the rotation after probeFailures answers other
// than 200 in a row (at once when its probe port refuses connections), as a Kubernetes readiness probe's failureThreshold
// has it, so one slow answer on a busy machine does not take it out, and
// returns at its first 200. kip's shutdown delay must be several times
// probeInterval × probeFailures.
const (
	probeInterval = 100 * time.Millisecond
	probeFailures = 2
	probeTimeout  = 2 * time.Second
)

// StartBalancer listens on a loopback port in front of kips, closes when
// the test ends, and returns once every kip has answered /readyz once.
func StartBalancer(t testing.TB, kips []*Kip) *Balancer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &Balancer{ln: ln, done: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	for _, k := range kips {
		b.backends = append(b.backends, &backend{addr: k.Addr, readyz: k.ProbeURL + "/readyz"})
	}
	b.wg.Add(2)
	go b.probe()
	go b.serve()
	t.Cleanup(b.close)
	for deadline := time.Now().Add(time.Minute); !b.allReady(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a backend never became ready at the balancer")
		}
	}
	return b
}

func (b *Balancer) allReady() bool {
	for i := range b.backends {
		if !b.Ready(i) {
			return false
		}
	}
	return true
}

// URL is where clients reach the kips through the balancer.
func (b *Balancer) URL() string { return "https://" + b.ln.Addr().String() }

// Ready reports whether the balancer sends new connections to kip i.
func (b *Balancer) Ready(i int) bool { return b.backends[i].ready.Load() }

// Accepted is how many connections the balancer sent to kip i.
func (b *Balancer) Accepted(i int) int64 { return b.backends[i].accepted.Load() }

// probe polls every backend's /readyz until the balancer closes.
func (b *Balancer) probe() {
	defer b.wg.Done()
	client := &http.Client{Timeout: probeTimeout}
	// A backend is out until its first 200.
	failures := make([]int, len(b.backends))
	for i := range failures {
		failures[i] = probeFailures
	}
	for {
		for i, be := range b.backends {
			switch err := probeReadyz(client, be.readyz); {
			case err == nil:
				failures[i] = 0
			case errors.Is(err, syscall.ECONNREFUSED):
				// The process is gone: out at once, as the kubelet marks
				// an exited container unready, so that a restarted
				// replica is back only once it says it is ready.
				failures[i] = probeFailures
			default:
				failures[i]++
			}
			be.ready.Store(failures[i] < probeFailures)
		}
		select {
		case <-b.done:
			return
		case <-time.After(probeInterval):
		}
	}
}

// probeReadyz is nil when url answers 200.
func probeReadyz(client *http.Client, url string) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	return nil
}

func (b *Balancer) serve() {
	defer b.wg.Done()
	for {
		conn, err := b.ln.Accept()
		if err != nil {
			return // closed
		}
		b.wg.Add(1)
		go b.forward(conn)
	}
}

// forward splices conn to a backend until either side closes.
func (b *Balancer) forward(client net.Conn) {
	defer b.wg.Done()
	server, err := b.dial()
	if err != nil {
		b.mu.Lock()
		b.noBackend++
		b.mu.Unlock()
		_ = client.Close()
		return
	}
	if !b.track(client, server) {
		return
	}
	defer b.untrack(client, server)
	copied := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(server, client); copied <- struct{}{} }()
	go func() { _, _ = io.Copy(client, server); copied <- struct{}{} }()
	// Neither TLS nor HTTP needs a half-closed connection: when one side
	// is gone, so is the conversation.
	<-copied
	_ = client.Close()
	_ = server.Close()
	<-copied
}

var errNoBackend = errors.New("no ready backend accepted the connection")

// dial connects to the next ready backend, skipping those that refuse.
func (b *Balancer) dial() (net.Conn, error) {
	start := b.next.Add(1)
	for i := range uint64(len(b.backends)) {
		be := b.backends[(start+i)%uint64(len(b.backends))]
		if !be.ready.Load() {
			continue
		}
		conn, err := net.DialTimeout("tcp", be.addr, 5*time.Second)
		if err != nil {
			continue
		}
		be.accepted.Add(1)
		return conn, nil
	}
	return nil, errNoBackend
}

// track records an open pair so close can end it; it refuses once the
// balancer is closing.
func (b *Balancer) track(conns ...net.Conn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-b.done:
		for _, c := range conns {
			_ = c.Close()
		}
		return false
	default:
	}
	for _, c := range conns {
		b.conns[c] = struct{}{}
	}
	return true
}

func (b *Balancer) untrack(conns ...net.Conn) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range conns {
		delete(b.conns, c)
	}
}

// RefusedConnections is how many connections found no ready backend.
func (b *Balancer) RefusedConnections() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.noBackend
}

// close stops accepting, cuts every open connection and waits for its
// goroutines.
func (b *Balancer) close() {
	b.mu.Lock()
	select {
	case <-b.done:
		b.mu.Unlock()
		return
	default:
	}
	close(b.done)
	for c := range b.conns {
		_ = c.Close()
	}
	b.mu.Unlock()
	_ = b.ln.Close()
	b.wg.Wait()
}
