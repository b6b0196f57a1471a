package recording

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/moby/spdystream/spdy"
)

// SPDY parses SPDY/3.1 as kubectl exec and attach use it (k8s.io/streaming
// over moby/spdystream): the client opens one stream per channel with a
// SYN_STREAM whose compressed headers name its streamType, then each side
// sends DATA frames on those streams.
//
// Frame headers are eight bytes of fixed layout and are read here, so DATA
// payload is reported as it arrives, never buffered whole (a DATA frame may
// be 16 MiB). Header blocks, the part that needs SPDY's zlib dictionary and
// a decompression context shared by all of one side's frames, are decoded
// by spdystream's own Framer, fed one complete control frame at a time.
//
// That Framer's zlib reader, with its 32 KiB window, is most of what an
// open session would hold, though kubectl sends all its header blocks as
// the session starts. So the parser keeps the client's control frames
// instead (a few hundred bytes), drops the Framer once the bytes it was
// given are parsed, and when another header block comes, decodes them all
// again with a new Framer: the same bytes through the same code give the
// same context. A client that sends more than spdyMaxHistory of them
// (port-forward opens streams as connections come) keeps its Framer.
type SPDY struct {
	sink Sink
	now  func() time.Time

	mu      sync.Mutex // the two directions share streams and the framer
	stopped bool
	streams []spdyStream
	client  spdyReader
	server  spdyReader

	framer *spdy.Framer // nil until a header block comes, and between feeds
	frame  bytes.Reader // the one control frame the framer may read
	// history is every control frame of the client's the framer decoded,
	// to decode again with a new one; nil once keepFramer is set.
	history    []byte
	keepFramer bool

	// opened hears of each stream the client opens, with its headers:
	// addStream for exec and attach, which records streams by type;
	// port-forward only notes the port.
	opened func(id uint32, h http.Header) error
}

// spdyMaxHistory bounds the control frames kept to rebuild the framer's
// decompression context: kubectl exec's SYN_STREAMs take under 200 bytes.
const spdyMaxHistory = 2 << 10

type spdyStream struct {
	id     uint32
	stream Stream // 0: a stream that is not recorded (port-forward data, unknown types)
}

// Limits on what the recorder will decode. kubectl's SYN_STREAMs are a few
// hundred bytes; anything far larger is refused rather than buffered.
const (
	spdyMaxControlFrame = 16 << 10
	spdyMaxHeaderField  = 4 << 10
	spdyMaxHeaders      = 64
	// spdyMaxStreams bounds the streams remembered: exec and attach open
	// at most five.
	spdyMaxStreams = 16
)

// SPDY control frame types (draft 3.1, section 2.6).
const (
	spdySynStream = 1
	spdySynReply  = 2
	spdyHeaders   = 8
)

// NewSPDY returns a parser for a connection upgraded to SPDY/3.1.
func NewSPDY(sink Sink) (*SPDY, error) {
	p, err := newSPDY(sink)
	if err != nil {
		return nil, err
	}
	p.opened = func(id uint32, h http.Header) error { return p.addStream(id, h.Get("streamType")) }
	return p, nil
}

// newSPDY is a parser that records no stream until opened says so.
func newSPDY(sink Sink) (*SPDY, error) {
	p := &SPDY{sink: sink, now: time.Now, client: spdyReader{fromClient: true}}
	p.opened = func(uint32, http.Header) error { return nil }
	// A framer now proves the options good, before any session depends on
	// one.
	if _, err := newSPDYFramer(&p.frame); err != nil {
		return nil, err
	}
	return p, nil
}

func newSPDYFramer(r io.Reader) (*spdy.Framer, error) {
	f, err := spdy.NewFramerWithOptions(nil, r,
		spdy.WithMaxControlFramePayloadSize(spdyMaxControlFrame),
		spdy.WithMaxHeaderFieldSize(spdyMaxHeaderField),
		spdy.WithMaxHeaderCount(spdyMaxHeaders))
	if err != nil {
		return nil, fmt.Errorf("creating a SPDY framer: %w", err)
	}
	return f, nil
}

// FromClient is given the bytes relayed from the client to the upstream.
func (p *SPDY) FromClient(b []byte) { p.feed(&p.client, b) }

// FromServer is given the bytes relayed from the upstream to the client.
func (p *SPDY) FromServer(b []byte) { p.feed(&p.server, b) }

// spdyReader is one direction's parsing state.
type spdyReader struct {
	fromClient bool

	hdr  [8]byte
	hdrN int

	inFrame   bool
	remaining uint32
	stream    Stream // the DATA frame's stream when recorded
	// ctl holds a control frame whose header block must be decoded (only
	// the client's: the server's replies name nothing the recording needs).
	ctl      []byte
	decoding bool
}

func (p *SPDY) feed(r *spdyReader, b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.dropFramer()
	for len(b) > 0 && !p.stopped {
		if !r.inFrame {
			n := copy(r.hdr[r.hdrN:], b)
			r.hdrN += n
			b = b[n:]
			if r.hdrN < len(r.hdr) {
				return
			}
			r.hdrN = 0
			if err := p.startFrame(r); err != nil {
				p.fail(r, err)
				return
			}
			if r.remaining == 0 {
				p.endFrame(r)
			}
			continue
		}
		n := min(uint32(len(b)), r.remaining)
		switch {
		case r.decoding:
			r.ctl = append(r.ctl, b[:n]...)
		case r.stream != 0:
			p.sink.Event(Event{Time: p.now(), Stream: r.stream, Data: b[:n]})
		}
		b = b[n:]
		r.remaining -= n
		if r.remaining == 0 {
			p.endFrame(r)
		}
	}
}

// skippable is how many of the next bytes from one side the parser has no
// use for: the rest of a DATA frame it does not record, or everything once
// it stopped. A tunnel need not unmask those to hand them over; it calls
// skip instead.
func (p *SPDY) skippable(fromClient bool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.reader(fromClient)
	switch {
	case p.stopped:
		return math.MaxInt
	case r.inFrame && !r.decoding && r.stream == 0:
		return int(r.remaining)
	}
	return 0
}

// skip consumes n bytes that skippable said the parser has no use for.
func (p *SPDY) skip(fromClient bool, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.reader(fromClient)
	if p.stopped || !r.inFrame || r.decoding || r.stream != 0 || uint64(n) > uint64(r.remaining) {
		return
	}
	r.remaining -= uint32(n)
	if r.remaining == 0 {
		p.endFrame(r)
	}
}

func (p *SPDY) reader(fromClient bool) *spdyReader {
	if fromClient {
		return &p.client
	}
	return &p.server
}

func (p *SPDY) fail(r *spdyReader, err error) {
	if p.stopped {
		return
	}
	p.stopped = true
	r.ctl = nil
	dir := "from the server"
	if r.fromClient {
		dir = "from the client"
	}
	p.sink.Malformed(fmt.Errorf("SPDY frames %s: %w", dir, err))
}

func (p *SPDY) startFrame(r *spdyReader) error {
	h := r.hdr
	length := uint32(h[5])<<16 | uint32(h[6])<<8 | uint32(h[7])
	r.inFrame, r.remaining, r.stream, r.decoding = true, length, 0, false
	if h[0]&0x80 == 0 { // DATA
		id := uint32(h[0]&0x7f)<<24 | uint32(h[1])<<16 | uint32(h[2])<<8 | uint32(h[3])
		if s := p.streamOf(id); s != 0 && s.fromClient() == r.fromClient {
			r.stream = s
		}
		return nil
	}
	version, typ := uint16(h[0]&0x7f)<<8|uint16(h[1]), uint16(h[2])<<8|uint16(h[3])
	if version != 3 {
		return fmt.Errorf("control frame of SPDY version %d", version)
	}
	if !r.fromClient || (typ != spdySynStream && typ != spdySynReply && typ != spdyHeaders) {
		return nil // skipped: nothing the recording needs
	}
	// Every header block the client sends shares one zlib context, so
	// each must be decoded, or the next SYN_STREAM could not be.
	if length > spdyMaxControlFrame {
		return fmt.Errorf("control frame of %d bytes", length)
	}
	r.decoding = true
	r.ctl = append(r.ctl[:0], h[:]...)
	return nil
}

func (p *SPDY) endFrame(r *spdyReader) {
	r.inFrame = false
	if !r.decoding {
		return
	}
	r.decoding = false
	frame, err := p.decode(r.ctl)
	if len(r.ctl) > 512 {
		r.ctl = nil // keep only a small buffer between frames
	}
	if err != nil {
		p.fail(r, err)
		return
	}
	if syn, ok := frame.(*spdy.SynStreamFrame); ok {
		if err := p.opened(uint32(syn.StreamId), syn.Headers); err != nil {
			p.fail(r, err)
		}
	}
}

// decode hands one complete control frame to spdystream's framer, after
// the earlier ones if the framer was dropped.
func (p *SPDY) decode(raw []byte) (f spdy.Frame, err error) {
	// The framer is third-party code reading hostile input; a panic in it
	// must end the recording of this stream, not kip.
	defer func() {
		if v := recover(); v != nil {
			f, err = nil, fmt.Errorf("SPDY framer panicked: %v", v)
		}
	}()
	if p.framer == nil {
		if p.framer, err = newSPDYFramer(&p.frame); err != nil {
			return nil, err
		}
		for old := p.history; len(old) > 0; {
			n := 8 + int(uint32(old[5])<<16|uint32(old[6])<<8|uint32(old[7]))
			if _, err := p.readFrame(old[:n]); err != nil {
				return nil, fmt.Errorf("decoding earlier header blocks again: %w", err)
			}
			old = old[n:]
		}
	}
	if f, err = p.readFrame(raw); err != nil {
		return nil, err
	}
	if !p.keepFramer && len(p.history)+len(raw) <= spdyMaxHistory {
		p.history = append(p.history, raw...)
	} else {
		p.keepFramer, p.history = true, nil
	}
	return f, nil
}

// dropFramer lets the framer go, with its decompression context, if the
// history can rebuild it.
func (p *SPDY) dropFramer() {
	if !p.keepFramer {
		p.framer = nil
	}
}

func (p *SPDY) readFrame(raw []byte) (spdy.Frame, error) {
	p.frame.Reset(raw)
	f, err := p.framer.ReadFrame()
	if err == nil && p.frame.Len() != 0 {
		err = errors.New("control frame longer than its header block")
	}
	return f, err
}

func (p *SPDY) addStream(id uint32, streamType string) error {
	stream := spdyStreamType(streamType)
	for _, s := range p.streams {
		if s.id == id {
			return fmt.Errorf("stream %d opened twice", id)
		}
		// The upstream uses one stream of each type; a second one could
		// carry "input" the container never got.
		if stream != 0 && s.stream == stream {
			return fmt.Errorf("a second %s stream", stream)
		}
	}
	if len(p.streams) == spdyMaxStreams {
		return fmt.Errorf("more than %d streams", spdyMaxStreams)
	}
	p.streams = append(p.streams, spdyStream{id: id, stream: stream})
	return nil
}

func (p *SPDY) streamOf(id uint32) Stream {
	for _, s := range p.streams {
		if s.id == id {
			return s.stream
		}
	}
	return 0
}

// spdyStreamType maps the streamType header of k8s.io/streaming.
func spdyStreamType(t string) Stream {
	switch t {
	case "stdin":
		return StreamStdin
	case "stdout":
		return StreamStdout
	case "stderr":
		return StreamStderr
	case "error":
		return StreamError
	case "resize":
		return StreamResize
	}
	return 0
}
