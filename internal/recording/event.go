package recording

import (
	"fmt"
	"time"
)

// Stream names the channel of an exec or attach session an Event came from.
type Stream uint8

// The streams kubectl exec and attach carry. The zero value is not a stream.
const (
	StreamStdin Stream = iota + 1
	StreamStdout
	StreamStderr
	// StreamError carries the upstream's final metav1.Status as JSON: the
	// exit code of the command, or why it could not run.
	StreamError
	// StreamResize carries the client's terminal size as JSON
	// {"Width":W,"Height":H}.
	StreamResize
	// StreamPortForward is no channel: it carries a PortForward's summary
	// of its session as JSON, once, as the session ends (also after
	// Malformed, since the byte counts hold however the parsing went).
	StreamPortForward
)

func (s Stream) String() string {
	switch s {
	case StreamStdin:
		return "stdin"
	case StreamStdout:
		return "stdout"
	case StreamStderr:
		return "stderr"
	case StreamError:
		return "error"
	case StreamResize:
		return "resize"
	case StreamPortForward:
		return "port-forward"
	}
	return fmt.Sprintf("stream(%d)", uint8(s))
}

// fromClient says whether s flows from the client to the container. A
// parser records a stream only in its own direction.
func (s Stream) fromClient() bool { return s == StreamStdin || s == StreamResize }

// Event is a piece of one stream, as seen when kip relayed it.
type Event struct {
	Time   time.Time
	Stream Stream
	// Data may alias the relayed bytes or a parser's scratch buffer: it is
	// valid only during the Sink call. It is never empty.
	Data []byte
}

// Sink receives what a parser saw. Calls may come from the two goroutines
// that relay each direction, so a Sink must be safe for concurrent use; it
// should also be quick, since it runs on the relay's path.
type Sink interface {
	Event(Event)
	// Malformed is called at most once per parser, when it stops parsing
	// because the stream is not what it expected; no Events follow but a
	// port-forward's summary, whose byte counts need no parsing.
	Malformed(error)
}

// Parser is fed copies of the bytes kip relays on one upgraded connection.
// Each method is called by one goroutine at a time (one per direction), with
// the bytes in the order relayed. Neither blocks on I/O nor modifies p.
type Parser interface {
	FromClient(p []byte)
	FromServer(p []byte)
}
