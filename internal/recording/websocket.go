package recording

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"
)

// WebSocket parses the Kubernetes channel protocols (channel.k8s.io up to
// v5, and the base64 variants) carried over RFC 6455 frames.
//
// The frame parser is kip's own: gorilla/websocket and
// golang.org/x/net/websocket read frames from a connection they own and
// block until a frame is whole, which would put a recorder on the relay's
// path and buffer whole messages. This one is pushed the relayed bytes and
// reports payload as it arrives, so a 16 MiB message costs no more memory
// than a small one.
type WebSocket struct {
	sink   Sink
	base64 bool
	now    func() time.Time
	// tunnel, when set, is fed the payload of every binary message whole,
	// with no channel byte: the connection tunnels another protocol (SPDY
	// for port-forward) rather than carrying channels.
	tunnel *SPDY

	// mu makes "no Event after Malformed" hold across the two directions;
	// they meet at the Sink's own lock anyway.
	mu      sync.Mutex
	stopped bool

	client, server wsReader
}

// Frame opcodes (RFC 6455 section 5.2).
const (
	wsContinuation = 0x0
	wsText         = 0x1
	wsBinary       = 0x2
	wsClose        = 0x8
	wsPing         = 0x9
	wsPong         = 0xa
)

// wsScratchSize bounds the buffer a direction uses to unmask or decode
// payload: payload is reported in pieces of at most this size.
const wsScratchSize = 2048

// websocketProtocols are the subprotocols of exec and attach, and whether
// each carries base64 text rather than binary.
var websocketProtocols = map[string]bool{
	"channel.k8s.io":           false,
	"v2.channel.k8s.io":        false,
	"v3.channel.k8s.io":        false,
	"v4.channel.k8s.io":        false,
	"v5.channel.k8s.io":        false,
	"base64.channel.k8s.io":    true,
	"v2.base64.channel.k8s.io": true,
	"v3.base64.channel.k8s.io": true,
	"v4.base64.channel.k8s.io": true,
}

// NewWebSocket returns a parser for a connection that negotiated protocol
// (the Sec-WebSocket-Protocol of the upstream's 101 answer).
func NewWebSocket(protocol string, sink Sink) (*WebSocket, error) {
	b64, ok := websocketProtocols[protocol]
	if !ok {
		return nil, fmt.Errorf("websocket subprotocol %q is not an exec or attach channel protocol", protocol)
	}
	return &WebSocket{
		sink:   sink,
		base64: b64,
		now:    time.Now,
		client: wsReader{fromClient: true},
	}, nil
}

// newWebSocketTunnel returns a parser for a WebSocket connection that
// tunnels another protocol in binary messages, as kubectl port-forward
// tunnels SPDY (subprotocol SPDY/3.1+portforward.k8s.io); inner parses
// the tunnelled bytes.
func newWebSocketTunnel(inner *SPDY, sink Sink) *WebSocket {
	return &WebSocket{
		sink:   sink,
		now:    time.Now,
		tunnel: inner,
		client: wsReader{fromClient: true, binaryOnly: true},
		server: wsReader{binaryOnly: true},
	}
}

// FromClient is given the bytes relayed from the client to the upstream.
func (p *WebSocket) FromClient(b []byte) { p.feed(&p.client, b) }

// FromServer is given the bytes relayed from the upstream to the client.
func (p *WebSocket) FromServer(b []byte) { p.feed(&p.server, b) }

// wsReader is one direction's parsing state.
type wsReader struct {
	fromClient bool
	binaryOnly bool // a tunnel: text messages are not part of it

	hdr  [14]byte
	hdrN int

	inFrame   bool
	remaining uint64
	opcode    byte
	fin       bool
	masked    bool
	mask      [4]byte
	maskPos   int

	inMessage   bool   // a data message is open (possibly fragmented)
	needChannel bool   // the message's next byte is its channel
	stream      Stream // the open message's stream; 0 when not recorded
	closed      bool   // this direction sent a close frame

	quantum  [4]byte // base64 characters not yet decoded
	quantumN int
	decoded  int // bytes of decoded base64 in scratch
	scratch  []byte
}

func (p *WebSocket) feed(r *wsReader, b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(b) > 0 && !p.stopped {
		if !r.inFrame {
			n, err := r.readHeader(b)
			b = b[n:]
			if err != nil {
				p.fail(r, err)
				return
			}
			if r.inFrame && r.remaining == 0 {
				p.endFrame(r)
			}
			continue
		}
		n := len(b)
		if uint64(n) > r.remaining {
			n = int(r.remaining)
		}
		p.payload(r, b[:n])
		b = b[n:]
		r.remaining -= uint64(n)
		if r.remaining == 0 {
			p.endFrame(r)
		}
	}
}

func (p *WebSocket) fail(r *wsReader, err error) {
	if p.stopped {
		return
	}
	p.stopped = true
	dir := "from the server"
	if r.fromClient {
		dir = "from the client"
	}
	p.sink.Malformed(fmt.Errorf("websocket frames %s: %w", dir, err))
}

// headerLen is the length of the frame header being read, as far as its
// first two bytes tell.
func (r *wsReader) headerLen() int {
	if r.hdrN < 2 {
		return 2
	}
	n := 2
	switch r.hdr[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if r.hdr[1]&0x80 != 0 {
		n += 4
	}
	return n
}

// readHeader consumes header bytes from b and, once the header is whole,
// starts the frame.
func (r *wsReader) readHeader(b []byte) (int, error) {
	used := 0
	for need := r.headerLen(); r.hdrN < need; need = r.headerLen() {
		if used == len(b) {
			return used, nil
		}
		c := copy(r.hdr[r.hdrN:need], b[used:])
		r.hdrN += c
		used += c
	}
	return used, r.startFrame()
}

func (r *wsReader) startFrame() error {
	h := r.hdr[:r.hdrN]
	r.hdrN = 0
	if r.closed {
		return errors.New("frame after close")
	}
	if h[0]&0x70 != 0 {
		// No extension (permessage-deflate) is negotiated by Kubernetes.
		return errors.New("reserved bits set")
	}
	fin, op, masked := h[0]&0x80 != 0, h[0]&0x0f, h[1]&0x80 != 0
	if masked != r.fromClient {
		return errors.New("client frames must be masked and server frames must not")
	}
	length := uint64(h[1] & 0x7f)
	rest := h[2:]
	switch length {
	case 126:
		length, rest = uint64(rest[0])<<8|uint64(rest[1]), rest[2:]
	case 127:
		length = 0
		for _, c := range rest[:8] {
			length = length<<8 | uint64(c)
		}
		if length>>63 != 0 {
			return errors.New("payload length has its top bit set")
		}
		rest = rest[8:]
	}
	switch {
	case op >= wsClose:
		if op != wsClose && op != wsPing && op != wsPong {
			return fmt.Errorf("unknown control opcode %#x", op)
		}
		if !fin || length > 125 {
			return errors.New("control frame fragmented or longer than 125 bytes")
		}
	case op == wsContinuation:
		if !r.inMessage {
			return errors.New("continuation frame outside a message")
		}
	case op == wsText || op == wsBinary:
		if op == wsText && r.binaryOnly {
			return errors.New("text message in a tunnel of binary messages")
		}
		if r.inMessage {
			return errors.New("new message before the fragmented one ended")
		}
		r.inMessage, r.needChannel, r.stream, r.quantumN = true, true, 0, 0
	default:
		return fmt.Errorf("unknown data opcode %#x", op)
	}
	r.inFrame, r.remaining, r.opcode, r.fin, r.masked, r.maskPos = true, length, op, fin, masked, 0
	if masked {
		copy(r.mask[:], rest[:4])
	}
	return nil
}

func (p *WebSocket) payload(r *wsReader, b []byte) {
	if r.opcode >= wsClose {
		return // control payload (ping data, close reason) is not recorded
	}
	if !r.masked {
		p.messageBytes(r, b)
		return
	}
	if r.scratch == nil {
		r.scratch = make([]byte, wsScratchSize)
	}
	// Unmask into a buffer of our own: b is the relay's and must stay as is.
	for len(b) > 0 {
		if p.tunnel != nil && p.skipTunnelled(r, &b) {
			continue
		}
		n := min(len(b), len(r.scratch)/2)
		piece := r.scratch[len(r.scratch)/2:][:n]
		r.maskPos = unmask(piece, b[:n], r.mask, r.maskPos)
		b = b[n:]
		p.messageBytes(r, piece)
	}
}

// skipTunnelled hands over, without unmasking them, the bytes at the start
// of *b that the tunnelled parser has no use for (the payload a
// port-forward carries), and says whether there were any.
func (p *WebSocket) skipTunnelled(r *wsReader, b *[]byte) bool {
	n := min(p.tunnel.skippable(r.fromClient), len(*b))
	if n == 0 {
		return false
	}
	p.tunnel.skip(r.fromClient, n)
	r.maskPos = (r.maskPos + n) & 3
	*b = (*b)[n:]
	return true
}

// unmask writes src XOR the frame's mask into dst, starting at byte pos
// of the mask, and returns the position after it. It works eight bytes at
// a time: a client's upload passes through here whole (port-forward
// tunnels all of it), so this is on the relay's path for every byte.
func unmask(dst, src []byte, mask [4]byte, pos int) int {
	var k [8]byte
	for i := range k {
		k[i] = mask[(pos+i)&3]
	}
	key := binary.LittleEndian.Uint64(k[:])
	n := 0
	for ; n+8 <= len(src); n += 8 {
		binary.LittleEndian.PutUint64(dst[n:], binary.LittleEndian.Uint64(src[n:])^key)
	}
	for ; n < len(src); n++ {
		dst[n] = src[n] ^ mask[(pos+n)&3]
	}
	return (pos + len(src)) & 3
}

// messageBytes handles unmasked payload of the open data message.
func (p *WebSocket) messageBytes(r *wsReader, d []byte) {
	if p.tunnel != nil {
		if r.fromClient {
			p.tunnel.FromClient(d)
		} else {
			p.tunnel.FromServer(d)
		}
		return
	}
	if r.needChannel && len(d) > 0 {
		r.needChannel = false
		r.stream = channelStream(d[0], p.base64, r.fromClient)
		d = d[1:]
	}
	if r.stream == 0 || len(d) == 0 {
		return
	}
	if !p.base64 {
		p.sink.Event(Event{Time: p.now(), Stream: r.stream, Data: d})
		return
	}
	p.base64Bytes(r, d)
}

// base64Bytes decodes d four characters at a time into the first half of
// scratch (the second half holds unmasked input).
func (p *WebSocket) base64Bytes(r *wsReader, d []byte) {
	if r.scratch == nil {
		r.scratch = make([]byte, wsScratchSize)
	}
	out := r.scratch[:len(r.scratch)/2]
	for _, c := range d {
		r.quantum[r.quantumN] = c
		r.quantumN++
		if r.quantumN < 4 {
			continue
		}
		r.quantumN = 0
		n, err := base64.StdEncoding.Decode(out[r.decoded:], r.quantum[:])
		if err != nil {
			p.fail(r, fmt.Errorf("base64 payload: %w", err))
			return
		}
		r.decoded += n
		if r.decoded+3 > len(out) {
			p.flushDecoded(r)
		}
	}
}

func (p *WebSocket) flushDecoded(r *wsReader) {
	if r.decoded > 0 && !p.stopped {
		p.sink.Event(Event{Time: p.now(), Stream: r.stream, Data: r.scratch[:r.decoded]})
	}
	r.decoded = 0
}

func (p *WebSocket) endFrame(r *wsReader) {
	r.inFrame = false
	if r.opcode == wsClose {
		r.closed = true
	}
	if r.opcode >= wsClose || !r.fin {
		return
	}
	r.inMessage = false
	if p.base64 && r.stream != 0 {
		p.flushDecoded(r)
		if r.quantumN != 0 {
			p.fail(r, errors.New("base64 message ends inside a quantum"))
		}
	}
}

// channelStream maps a message's channel byte to the stream it records, or
// 0 for a channel not recorded in this direction (v5's close-channel
// message, 255, included).
func channelStream(ch byte, b64 bool, fromClient bool) Stream {
	if b64 {
		ch -= '0'
	}
	var s Stream
	switch ch {
	case 0:
		s = StreamStdin
	case 1:
		s = StreamStdout
	case 2:
		s = StreamStderr
	case 3:
		s = StreamError
	case 4:
		s = StreamResize
	default:
		return 0
	}
	if s.fromClient() != fromClient {
		return 0
	}
	return s
}
