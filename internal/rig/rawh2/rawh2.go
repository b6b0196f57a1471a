package rawh2

import (
	"bytes"
	"fmt"
	"io"
	"strconv"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Start begins a client connection on conn: it writes the preface and an
// empty SETTINGS frame, and returns a framer that decodes header blocks.
func Start(conn io.ReadWriter) (*http2.Framer, error) {
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		return nil, err
	}
	fr := http2.NewFramer(conn, conn)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := fr.WriteSettings(); err != nil {
		return nil, err
	}
	return fr, nil
}

// Block encodes fields, names and values exactly as given and in order,
// into one header block.
func Block(fields [][2]string) ([]byte, error) {
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range fields {
		if err := enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}); err != nil {
			return nil, err
		}
	}
	return block.Bytes(), nil
}

// Send writes a request on stream id: fields in one HEADERS frame, then
// body, when there is one, in a DATA frame that ends the stream. With no
// body the HEADERS frame ends it.
func Send(fr *http2.Framer, id uint32, fields [][2]string, body string) error {
	block, err := Block(fields)
	if err != nil {
		return err
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndHeaders: true, EndStream: body == ""}); err != nil {
		return err
	}
	if body == "" {
		return nil
	}
	return fr.WriteData(id, true, []byte(body))
}

// GoAway is a GOAWAY frame the server sent.
type GoAway struct {
	Code         http2.ErrCode
	LastStreamID uint32
	Debug        string
}

// Answer is what came back on one stream.
type Answer struct {
	// Status is the :status of the answer's headers; 0 before they came.
	Status int
	Body   []byte
	// Ended says the stream ended with END_STREAM: the answer is whole.
	Ended bool
	// Reset says the server reset the stream, with ResetCode.
	Reset     bool
	ResetCode http2.ErrCode
	// GoAway is a GOAWAY that came before the stream ended, or ended it.
	GoAway *GoAway
}

// Closed says the server ended the connection before the stream ended.
func (a Answer) Closed() bool { return a.GoAway != nil && !a.Ended }

func (a Answer) String() string {
	switch {
	case a.Closed():
		return fmt.Sprintf("GOAWAY %v %q (answer %d so far)", a.GoAway.Code, a.GoAway.Debug, a.Status)
	case a.Reset:
		return fmt.Sprintf("RST_STREAM %v", a.ResetCode)
	}
	return fmt.Sprintf("%d %.200s", a.Status, a.Body)
}

// Reader reads answers from a client connection's framer.
type Reader struct {
	Framer *http2.Framer
	// Silent never writes: no SETTINGS or PING acknowledgements, no flow
	// control credit. For a caller whose own goroutine writes meanwhile: a
	// framer's writes are not safe for concurrent use.
	Silent bool
}

// Answer reads frames until stream id ends, is reset, or the server ends
// the connection before it can. A GOAWAY that still lets id finish
// (NO_ERROR, id at or below its last stream), which Go's server sends for
// an answer with Connection: close, is noted and reading goes on. The
// error is a frame that could not be read.
func (r Reader) Answer(id uint32) (Answer, error) {
	var a Answer
	for {
		f, err := r.Framer.ReadFrame()
		if err != nil {
			return a, fmt.Errorf("reading stream %d (status so far %d): %w", id, a.Status, err)
		}
		if r.answer(&a, id, f) {
			return a, nil
		}
	}
}

// answer adds frame f to a, and reports whether stream id is over.
func (r Reader) answer(a *Answer, id uint32, f http2.Frame) (over bool) {
	switch f := f.(type) {
	case *http2.SettingsFrame:
		if !f.IsAck() && !r.Silent {
			_ = r.Framer.WriteSettingsAck()
		}
	case *http2.PingFrame:
		if !f.IsAck() && !r.Silent {
			_ = r.Framer.WritePing(true, f.Data)
		}
	case *http2.GoAwayFrame:
		a.GoAway = &GoAway{Code: f.ErrCode, LastStreamID: f.LastStreamID, Debug: string(f.DebugData())}
		return f.ErrCode != http2.ErrCodeNo || f.LastStreamID < id
	case *http2.RSTStreamFrame:
		if f.StreamID == id {
			a.Reset, a.ResetCode = true, f.ErrCode
			return true
		}
	case *http2.MetaHeadersFrame:
		if f.StreamID == id {
			if a.Status == 0 {
				a.Status, _ = strconv.Atoi(f.PseudoValue("status"))
			}
			a.Ended = f.StreamEnded()
			return a.Ended
		}
	case *http2.DataFrame:
		if f.StreamID == id {
			a.Body = append(a.Body, f.Data()...)
			if n := uint32(len(f.Data())); n > 0 && !r.Silent {
				_ = r.Framer.WriteWindowUpdate(0, n)
				_ = r.Framer.WriteWindowUpdate(id, n)
			}
			a.Ended = f.StreamEnded()
			return a.Ended
		}
	}
	return false
}
