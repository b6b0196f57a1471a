package recording

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

const (
	// MaxHeaderLine bounds the header line ReadInfo reads: a header is a
	// few hundred bytes, and a file whose first line does not end within
	// this is not a recording kip wrote.
	MaxHeaderLine = 64 << 10
	// infoTail is how much of a recording's end ReadInfo reads: the seal
	// and the port-forward line fit in it with room to spare.
	infoTail = 4 * maxSealLine
)

// ErrNotRecording is returned by ReadInfo for a file that does not start
// with the header of a recording kip wrote.
var ErrNotRecording = errors.New("not a kip session recording")

// Info is what a recording's first and last lines say about it, read
// without reading the events in between.
type Info struct {
	Header Header
	// Sealed says the last line is a seal; whether it is valid is for
	// Verify to say.
	Sealed bool
	// SealKey names the key of the seal ("sha256:<hex>").
	SealKey string
	// End is the time of the seal; zero when unsealed.
	End time.Time
	// PortForward is the JSON data of the recording's kip-portforward
	// line, nil when it has none.
	PortForward []byte
}

// ReadInfo reads the header and the last few KiB of the recording r of
// size bytes. It reads at most MaxHeaderLine and a few KiB whatever the
// size, so listing many recordings costs little.
func ReadInfo(r io.ReaderAt, size int64) (Info, error) {
	head := make([]byte, min(size, MaxHeaderLine))
	n, err := r.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return Info{}, fmt.Errorf("reading the recording's header: %w", err)
	}
	head = head[:n]
	nl := bytes.IndexByte(head, '\n')
	if nl < 0 {
		return Info{}, fmt.Errorf("%w: its first line is unfinished or longer than %d bytes", ErrNotRecording, MaxHeaderLine)
	}
	h, err := parseHeader(head[:nl])
	if err != nil {
		return Info{}, err
	}
	info := Info{Header: h}
	headerEnd := int64(nl + 1)

	from := max(headerEnd, size-infoTail)
	tail := make([]byte, size-from)
	n, err = r.ReadAt(tail, from)
	if err != nil && !errors.Is(err, io.EOF) {
		return Info{}, fmt.Errorf("reading the recording's end: %w", err)
	}
	tail = tail[:n]
	if from > headerEnd {
		// The first bytes may be the end of a line cut in two.
		i := bytes.IndexByte(tail, '\n')
		if i < 0 {
			return info, nil
		}
		tail = tail[i+1:]
	}
	info.readTail(tail)
	return info, nil
}

// readTail reads the seal and the port-forward line from the whole lines
// of tail. A last line without its newline is one still being written.
func (info *Info) readTail(tail []byte) {
	lines := bytes.SplitAfter(tail, []byte("\n"))
	last := len(lines) - 1 // the last whole line, or a line being written
	if last >= 0 && len(lines[last]) == 0 {
		last--
	}
	for i, line := range lines {
		if len(line) == 0 || line[len(line)-1] != '\n' {
			continue
		}
		t, code, data, ok := parseLine(line)
		if !ok {
			continue
		}
		switch code {
		case codePortForward:
			info.PortForward = []byte(data)
		case codeSeal:
			if i != last {
				continue // a seal only counts as the last line
			}
			var s seal
			if json.Unmarshal([]byte(data), &s) != nil {
				continue
			}
			info.Sealed, info.SealKey = true, s.Key
			info.End = info.Header.Start.Add(time.Duration(t * float64(time.Second)))
		}
	}
}

// parseHeader reads the header line kip writes: asciicast v2 with kip's
// identity and start time.
func parseHeader(line []byte) (Header, error) {
	var h struct {
		Version int `json:"version"`
		Width   int `json:"width"`
		Height  int `json:"height"`
		Kip     *struct {
			Identity
			TTY   bool   `json:"tty"`
			Start string `json:"start"`
		} `json:"kip"`
	}
	if err := json.Unmarshal(line, &h); err != nil || h.Version != 2 || h.Kip == nil {
		return Header{}, fmt.Errorf("%w: its first line is not an asciicast v2 header with kip's identity", ErrNotRecording)
	}
	start, err := time.Parse(time.RFC3339Nano, h.Kip.Start)
	if err != nil {
		return Header{}, fmt.Errorf("%w: its start time %q is not RFC 3339", ErrNotRecording, h.Kip.Start)
	}
	return Header{Identity: h.Kip.Identity, TTY: h.Kip.TTY, Width: h.Width, Height: h.Height, Start: start}, nil
}

// parseLine reads one event line: [t, "code", "data"].
func parseLine(line []byte) (t float64, code, data string, ok bool) {
	var ev []json.RawMessage
	if json.Unmarshal(line, &ev) != nil || len(ev) != 3 ||
		json.Unmarshal(ev[0], &t) != nil || json.Unmarshal(ev[1], &code) != nil ||
		json.Unmarshal(ev[2], &data) != nil || t < 0 {
		return 0, "", "", false
	}
	return t, code, data, true
}
