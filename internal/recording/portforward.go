package recording

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// PortForward is the Parser of a port-forward session. It logs the
// session, not its payload: the bytes relayed each way and the ports the
// client opened streams to, read from the SPDY SYN_STREAM headers (kubectl
// opens a data and an error stream per connection, each naming its port).
// The forwarded bytes are the user's own protocol, which may be a
// database's, and are never recorded.
//
// kubectl speaks SPDY/3.1, either as the upgraded connection itself or,
// since 1.30, tunnelled in the binary messages of a WebSocket with
// subprotocol SPDY/3.1+portforward.k8s.io.
type PortForward struct {
	sink Sink
	now  func() time.Time
	// spdy reads the ports; nil when the connection is neither.
	spdy Parser

	// Counted on the relay's path, ahead of any parsing, so bytes sent on
	// a connection the parsers gave up on are counted all the same.
	fromClient, toClient atomic.Int64

	mu        sync.Mutex
	ports     []uint16 // in the order first opened
	malformed bool
	ended     bool
}

// portForwardTunnel is the WebSocket subprotocol of port-forward.
const portForwardTunnel = "SPDY/3.1+portforward.k8s.io"

// portForwardMaxPorts bounds the ports remembered; kubectl forwards the
// few a user names.
const portForwardMaxPorts = 64

var _ Parser = (*PortForward)(nil)

// NewPortForward returns the parser of a port-forward connection that the
// upstream switched to upgrade (its 101's Upgrade header) with WebSocket
// subprotocol protocol. A connection it cannot read the ports of is still
// counted, and the recording says why the ports are missing.
func NewPortForward(upgrade, protocol string, sink Sink) *PortForward {
	p := &PortForward{sink: sink, now: time.Now}
	var err error
	switch {
	case strings.EqualFold(upgrade, "SPDY/3.1"):
		p.spdy, err = p.newSPDY()
	case strings.EqualFold(upgrade, "websocket") && protocol == portForwardTunnel:
		var inner *SPDY
		if inner, err = p.newSPDY(); err == nil {
			p.spdy = newWebSocketTunnel(inner, p)
		}
	default:
		err = fmt.Errorf("port-forward over %q with subprotocol %q is neither SPDY/3.1 nor SPDY tunnelled in WebSocket", upgrade, protocol)
	}
	if err != nil {
		p.Malformed(err)
	}
	return p
}

func (p *PortForward) newSPDY() (*SPDY, error) {
	s, err := newSPDY(p)
	if err != nil {
		return nil, err
	}
	s.opened = p.opened
	return s, nil
}

// FromClient is given the bytes relayed from the client to the upstream.
func (p *PortForward) FromClient(b []byte) {
	p.fromClient.Add(int64(len(b)))
	if p.spdy != nil {
		p.spdy.FromClient(b)
	}
}

// FromServer is given the bytes relayed from the upstream to the client.
func (p *PortForward) FromServer(b []byte) {
	p.toClient.Add(int64(len(b)))
	if p.spdy != nil {
		p.spdy.FromServer(b)
	}
}

// opened notes the port a stream goes to. A stream without a valid port
// is the upstream's to refuse, and names no port here.
func (p *PortForward) opened(_ uint32, h http.Header) error {
	port, err := strconv.ParseUint(h.Get("port"), 10, 16)
	if err != nil || port == 0 {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if slices.Contains(p.ports, uint16(port)) {
		return nil
	}
	if len(p.ports) == portForwardMaxPorts {
		// Stop reading rather than leave ports out unsaid.
		return fmt.Errorf("more than %d ports", portForwardMaxPorts)
	}
	p.ports = append(p.ports, uint16(port))
	return nil
}

// Event is never called: the parsers of a port-forward record no stream.
func (p *PortForward) Event(Event) {}

// Malformed passes on the first reason the ports could not be read.
func (p *PortForward) Malformed(err error) {
	p.mu.Lock()
	first := !p.malformed && !p.ended
	p.malformed = true
	p.mu.Unlock()
	if first {
		p.sink.Malformed(err)
	}
}

// PortForwardSummary is what a port-forward recording says of the session
// as it ends: the ports the client opened streams to, and the bytes
// relayed each way after the upgrade, over all streams, framing included.
type PortForwardSummary struct {
	Ports      []uint16 `json:"ports"`
	FromClient int64    `json:"fromClient"`
	ToClient   int64    `json:"toClient"`
}

// Summary is the session so far.
func (p *PortForward) Summary() PortForwardSummary {
	p.mu.Lock()
	ports := append([]uint16{}, p.ports...)
	p.mu.Unlock()
	return PortForwardSummary{Ports: ports, FromClient: p.fromClient.Load(), ToClient: p.toClient.Load()}
}

// End gives the sink the session's summary, once, as a StreamPortForward
// event; call it when the connection is closed, before sealing.
func (p *PortForward) End() {
	p.mu.Lock()
	ended := p.ended
	p.ended = true
	p.mu.Unlock()
	if ended {
		return
	}
	data, err := json.Marshal(p.Summary())
	if err != nil {
		p.sink.Malformed(fmt.Errorf("encoding the port-forward summary: %w", err))
		return
	}
	p.sink.Event(Event{Time: p.now(), Stream: StreamPortForward, Data: data})
}
