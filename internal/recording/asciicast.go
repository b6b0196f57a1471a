package recording

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Identity is who ran a session and where, as kip authenticated it.
type Identity struct {
	SessionID   string   `json:"sessionID"`
	User        string   `json:"user"`
	Caller      string   `json:"caller,omitempty"` // who authenticated, when they impersonated User
	UID         string   `json:"uid,omitempty"`
	Groups      []string `json:"groups,omitempty"`
	Cluster     string   `json:"cluster,omitempty"`
	Namespace   string   `json:"namespace"`
	Pod         string   `json:"pod"`
	Container   string   `json:"container,omitempty"`
	Subresource string   `json:"subresource"` // exec, attach or portforward
	Command     []string `json:"command,omitempty"`
	Replica     string   `json:"replica,omitempty"` // the kip replica that relayed it
	AuditID     string   `json:"auditID,omitempty"` // as in kip's and the upstream's audit events
}

// Header describes a session as it starts.
type Header struct {
	Identity Identity
	// TTY sessions merge stderr into "o", as a terminal shows them; others
	// keep stderr apart as "e".
	TTY bool
	// Width and Height are the terminal's size if known. When they are not,
	// a TTY session's header waits for the client's resize messages
	// (kubectl sends one at once) and takes the size of the last one
	// before any other event, within the flush interval; other sessions,
	// and one whose first message is something else, get 80x24. Later
	// resize messages follow as "r" events.
	Width, Height int
	Start         time.Time
}

// Event codes. "o", "i", "r" and "m" are asciicast v2's own; the others are
// kip's, and asciicast players skip codes they do not know.
const (
	codeOutput = "o" // stdout, and stderr of a TTY session
	codeStderr = "e" // stderr of a non-TTY session
	codeInput  = "i"
	codeResize = "r" // "COLSxROWS"
	codeMarker = "m" // kip's notes, e.g. a stream it could not parse
	codeStatus = "x" // the upstream's final metav1.Status, as JSON
	codeSeal   = "kip-seal"
	// codePortForward is a port-forward session's summary, its last line
	// before the seal: {"ports":[…],"fromClient":N,"toClient":M}.
	codePortForward = "kip-portforward"
)

const (
	flushInterval    = time.Second
	maxResizeMessage = 256
)

// A session borrows its buffer only while it has lines to write, and hands
// it back when the flush timer writes them, so an idle session holds none.
// It starts with a small one, enough for typing and prompts; once that
// fills, output is streaming, and a large one makes the writes few: a
// write(2) to a file costs about as much as copying 16 KiB into it, and
// with 8 KiB writes the system calls alone cost more CPU than relaying the
// output did. Either size bounds what a session holds, however large an
// event.
const (
	smallBufferSize = 8 << 10
	largeBufferSize = 64 << 10
)

// The buffers not lent to a session, shared by all sessions of the
// process: they hold free memory only, never what a session wrote.
var (
	smallBuffers = sync.Pool{New: func() any { return new([smallBufferSize]byte) }}
	largeBuffers = sync.Pool{New: func() any { return new([largeBufferSize]byte) }}
)

// Writer writes a session as asciicast v2 and seals it on Close. It is a
// Sink, safe for the two relay goroutines to call at once.
//
// Writes happen on the caller's goroutine when the buffer is full, and on a
// timer otherwise, so what was relayed reaches dst within a second. After a
// write error, the Writer drops everything (Err says why) rather than hold
// the session up; the recording is then left unsealed.
type Writer struct {
	mu     sync.Mutex
	dst    io.Writer
	sum    hash.Hash
	signer crypto.Signer
	now    func() time.Time
	every  time.Duration // flushInterval, shorter in tests

	start time.Time
	tty   bool
	last  float64 // seconds of the last line: lines never go back in time

	// header is the session's header while it waits for the terminal's
	// size; nil once written.
	header *Header

	// buf is borrowed from smallBuffers or largeBuffers (by its
	// capacity), nil while the session has nothing to write.
	buf    []byte
	carry  [StreamResize + 1]utf8Carry
	resize []byte
	timer  *time.Timer
	armed  bool
	err    error
	closed bool
}

// utf8Carry holds the start of a character split across two pieces of one
// stream, so it is written whole rather than as two U+FFFD.
type utf8Carry struct {
	b [3]byte
	n int
}

var _ Sink = (*Writer)(nil)

// NewWriter writes h to dst and returns a Writer for the session's events.
// signer seals the recording on Close; it must hold an Ed25519 or ECDSA key.
func NewWriter(dst io.Writer, h Header, signer crypto.Signer) (*Writer, error) {
	if signer == nil {
		return nil, errors.New("a recording needs a key to seal it")
	}
	if _, err := algorithmOf(signer.Public()); err != nil {
		return nil, err
	}
	line, err := headerLine(h)
	if err != nil {
		return nil, err
	}
	w := &Writer{
		dst: dst, sum: sha256.New(), signer: signer, now: time.Now, every: flushInterval,
		start: h.Start, tty: h.TTY,
	}
	if h.TTY && (h.Width <= 0 || h.Height <= 0) {
		// The header waits for the first resize message, but no longer
		// than any event would: a crash still loses at most the last
		// flush interval, header included.
		w.header = &h
		w.armed = true
		w.timer = time.AfterFunc(w.every, w.tick)
		return w, nil
	}
	w.appendRaw(line)
	w.flushLocked()
	w.release()
	return w, w.err
}

// writeHeader writes the header that waited for the terminal's size, with
// the size it has by now.
func (w *Writer) writeHeader() {
	h := w.header
	if h == nil {
		return
	}
	w.header = nil
	line, err := headerLine(*h)
	if err != nil {
		w.err = err
		return
	}
	w.appendRaw(line)
}

type castHeader struct {
	Version   int       `json:"version"`
	Width     int       `json:"width"`
	Height    int       `json:"height"`
	Timestamp int64     `json:"timestamp"`
	Command   string    `json:"command,omitempty"`
	Title     string    `json:"title"`
	Kip       kipHeader `json:"kip"`
}

type kipHeader struct {
	Identity
	TTY   bool              `json:"tty"`
	Start string            `json:"start"`
	Codes map[string]string `json:"codes"`
}

func headerLine(h Header) ([]byte, error) {
	if h.Start.IsZero() {
		return nil, errors.New("a recording needs its start time")
	}
	width, height := h.Width, h.Height
	if width <= 0 || height <= 0 {
		width, height = 80, 24
	}
	codes := map[string]string{codeOutput: "stdout", codeStderr: "stderr", codeInput: "stdin",
		codeResize: "resize", codeMarker: "kip note", codeStatus: "exit status", codeSeal: "seal"}
	if h.TTY {
		codes[codeOutput] = "stdout and stderr"
		delete(codes, codeStderr)
	}
	if h.Identity.Subresource == "portforward" {
		codes[codePortForward] = "port-forward summary"
	}
	id := h.Identity
	b, err := json.Marshal(castHeader{
		Version: 2, Width: width, Height: height, Timestamp: h.Start.Unix(),
		Command: strings.Join(id.Command, " "),
		Title:   title(id),
		Kip: kipHeader{Identity: id, TTY: h.TTY, Start: h.Start.UTC().Format(time.RFC3339Nano),
			Codes: codes},
	})
	if err != nil {
		return nil, fmt.Errorf("encoding the recording's header: %w", err)
	}
	return append(b, '\n'), nil
}

// title is what a player shows: "alice payments/api-7f9/app exec".
func title(id Identity) string {
	where := id.Namespace + "/" + id.Pod
	if id.Container != "" {
		where += "/" + id.Container
	}
	return strings.Join([]string{id.User, where, id.Subresource}, " ")
}

// Event writes one piece of the session.
func (w *Writer) Event(e Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.err != nil {
		return
	}
	if e.Stream != StreamResize {
		w.writeHeader()
	}
	switch e.Stream {
	case StreamStdout:
		w.text(e.Time, e.Stream, codeOutput, e.Data)
	case StreamStderr:
		code := codeStderr
		if w.tty {
			code = codeOutput
		}
		w.text(e.Time, e.Stream, code, e.Data)
	case StreamStdin:
		w.text(e.Time, e.Stream, codeInput, e.Data)
	case StreamError:
		w.text(e.Time, e.Stream, codeStatus, e.Data)
	case StreamResize:
		w.resizeBytes(e.Time, e.Data)
	case StreamPortForward:
		w.line(e.Time, codePortForward, nil, e.Data)
	}
	w.arm()
}

// Malformed notes in the recording that a stream stopped being parsed, so a
// reader knows the recording ends early.
func (w *Writer) Malformed(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.err != nil {
		return
	}
	w.writeHeader()
	w.line(w.now(), codeMarker, nil, []byte("kip: recording stopped: "+err.Error()))
	w.arm()
}

// Err is the first write error, if any.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Close writes what is buffered and seals the recording. It does not close
// dst.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return w.err
	}
	w.closed = true
	if w.timer != nil {
		w.timer.Stop()
	}
	w.writeHeader()
	now := w.now()
	for s := range w.carry {
		if c := &w.carry[s]; c.n > 0 && w.err == nil {
			w.line(now, w.codeOf(Stream(s)), nil, c.b[:c.n])
			c.n = 0
		}
	}
	w.flushLocked()
	w.release()
	if w.err != nil {
		return w.err
	}
	seal, err := sealLine(w.seconds(now), w.sum.Sum(nil), w.signer)
	if err != nil {
		w.err = err
		return err
	}
	if _, err := w.dst.Write(seal); err != nil {
		w.err = fmt.Errorf("writing the recording's seal: %w", err)
	}
	return w.err
}

func (w *Writer) codeOf(s Stream) string {
	switch s {
	case StreamStdin:
		return codeInput
	case StreamStderr:
		if !w.tty {
			return codeStderr
		}
	case StreamError:
		return codeStatus
	}
	return codeOutput
}

// text writes data of stream s, holding back an incomplete character at its
// end until the stream's next piece.
func (w *Writer) text(t time.Time, s Stream, code string, data []byte) {
	var head []byte
	c := &w.carry[s]
	if c.n > 0 {
		var buf [utf8.UTFMax]byte
		n := copy(buf[:], c.b[:c.n])
		for n < len(buf) && len(data) > 0 && !utf8.FullRune(buf[:n]) {
			buf[n] = data[0]
			n, data = n+1, data[1:]
		}
		if !utf8.FullRune(buf[:n]) {
			c.n = copy(c.b[:], buf[:n])
			return
		}
		c.n = 0
		head = buf[:n]
	}
	if tail := incompleteTail(data); tail > 0 {
		c.n = copy(c.b[:], data[len(data)-tail:])
		data = data[:len(data)-tail]
	}
	if len(head)+len(data) > 0 {
		w.line(t, code, head, data)
	}
}

// line writes one event line: [t, "code", "a" + "b"].
func (w *Writer) line(t time.Time, code string, a, b []byte) {
	w.ensure(64 + len(code))
	w.buf = append(w.buf, '[')
	w.buf = strconv.AppendFloat(w.buf, w.seconds(t), 'f', -1, 64)
	w.buf = append(w.buf, ", \""...)
	w.buf = append(w.buf, code...)
	w.buf = append(w.buf, "\", \""...)
	w.appendText(a)
	w.appendText(b)
	w.ensure(3)
	w.buf = append(w.buf, "\"]\n"...)
}

// appendText escapes s into the buffer, writing the buffer out each time
// it fills.
func (w *Writer) appendText(s []byte) {
	for {
		var n int
		w.buf, n = appendJSONString(w.buf, s)
		if s = s[n:]; len(s) == 0 {
			return
		}
		w.full()
	}
}

// appendRaw appends b to the buffer, or writes it as it is if it is
// larger than any buffer (a header with many groups).
func (w *Writer) appendRaw(b []byte) {
	w.ensure(len(b))
	if len(b) <= cap(w.buf)-len(w.buf) {
		w.buf = append(w.buf, b...)
		return
	}
	w.flushLocked()
	w.writeOut(b)
}

func (w *Writer) resizeBytes(t time.Time, d []byte) {
	for len(d) > 0 {
		i := bytes.IndexByte(d, '}')
		if i < 0 {
			if len(w.resize)+len(d) > maxResizeMessage {
				w.resize = w.resize[:0]
				w.resizeNote(t, "kip: resize message too long")
				return
			}
			w.resize = append(w.resize, d...)
			return
		}
		piece := d[:i+1]
		d = d[i+1:]
		if len(w.resize)+len(piece) > maxResizeMessage {
			w.resize = w.resize[:0]
			w.resizeNote(t, "kip: resize message too long")
			continue
		}
		w.resize = append(w.resize, piece...)
		var size struct{ Width, Height uint16 }
		switch err := json.Unmarshal(w.resize, &size); {
		case err == nil && w.header != nil && size.Width > 0 && size.Height > 0:
			// The terminal's size as the session starts: the header's.
			// It waits on for more, as kubectl attach sends the size plus
			// one, then the size, to make the program redraw.
			w.header.Width, w.header.Height = int(size.Width), int(size.Height)
		case err != nil:
			w.resizeNote(t, "kip: unreadable resize message")
		default:
			w.writeHeader()
			w.line(t, codeResize, nil, fmt.Appendf(nil, "%dx%d", size.Width, size.Height))
		}
		w.resize = w.resize[:0]
	}
}

func (w *Writer) resizeNote(t time.Time, note string) {
	w.writeHeader()
	w.line(t, codeMarker, nil, []byte(note))
}

// seconds is t's offset from the start, to the microsecond.
func (w *Writer) seconds(t time.Time) float64 {
	s := math.Round(t.Sub(w.start).Seconds()*1e6) / 1e6
	if s < w.last {
		s = w.last
	}
	w.last = s
	return s
}

// ensure makes room for n more bytes in the buffer, as far as its size
// allows.
func (w *Writer) ensure(n int) {
	if len(w.buf)+n > cap(w.buf) {
		w.full()
	}
}

// full writes out a buffer that has no room left, and makes it a large one
// if it was small (or none): the session is streaming.
func (w *Writer) full() {
	w.flushLocked()
	if cap(w.buf) >= largeBufferSize {
		return
	}
	if w.buf == nil {
		w.buf = smallBuffers.Get().(*[smallBufferSize]byte)[:0]
		return
	}
	w.release()
	w.buf = largeBuffers.Get().(*[largeBufferSize]byte)[:0]
}

// release hands an empty buffer back to its pool.
func (w *Writer) release() {
	switch cap(w.buf) {
	case smallBufferSize:
		smallBuffers.Put((*[smallBufferSize]byte)(w.buf[:smallBufferSize]))
	case largeBufferSize:
		largeBuffers.Put((*[largeBufferSize]byte)(w.buf[:largeBufferSize]))
	}
	w.buf = nil
}

// flushLocked writes the buffer.
func (w *Writer) flushLocked() {
	if len(w.buf) > 0 {
		w.writeOut(w.buf)
	}
	w.buf = w.buf[:0]
}

// writeOut writes b to dst, hashing exactly the bytes handed to it.
func (w *Writer) writeOut(b []byte) {
	if w.err != nil {
		return
	}
	w.sum.Write(b)
	if _, err := w.dst.Write(b); err != nil {
		w.err = fmt.Errorf("writing the recording: %w", err)
	}
}

// arm makes sure buffered lines are written within flushInterval.
func (w *Writer) arm() {
	if w.armed || len(w.buf) == 0 {
		return
	}
	w.armed = true
	if w.timer == nil {
		w.timer = time.AfterFunc(w.every, w.tick)
		return
	}
	w.timer.Reset(w.every)
}

func (w *Writer) tick() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.armed = false
	if !w.closed && w.err == nil {
		w.writeHeader()
		w.flushLocked()
		w.release()
	}
}
