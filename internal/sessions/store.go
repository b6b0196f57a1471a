package sessions

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/kip-proxy/kip/internal/recording"
)

// ErrNotFound is returned by a Store's Open for an ID it does not hold.
var ErrNotFound = errors.New("no such recording")

// Summary is what a listing shows of one recording, read from its header
// and its last lines.
type Summary struct {
	recording.Identity
	TTY   bool
	Start time.Time
	// End is the time of the recording's last event or seal; zero while
	// the session is still being written.
	End time.Time
	// Sealed says the recording ends with a seal. Whether the seal is
	// valid is for Verify to say.
	Sealed bool
	// SealKey is the seal's key ID ("sha256:<hex>"), when sealed.
	SealKey string
	// Size is the recording's length in bytes.
	Size int64
	// Store names where the recording was found: "dir" or "bucket".
	Store string
	// PortForward is what a port-forward session carried, from its
	// "kip-portforward" line; nil for exec and attach, and for a
	// port-forward still running.
	PortForward *PortForward
}

// PortForward is the traffic of a port-forward session: kip logs who,
// where and how much, never the payload.
type PortForward struct {
	// Ports are the pod's ports, as the client's streams named them.
	Ports []int32 `json:"ports"`
	// FromClient and ToClient count the bytes relayed each way, over all
	// streams.
	FromClient int64 `json:"fromClient"`
	ToClient   int64 `json:"toClient"`
}

// Filter selects recordings; a zero field matches everything.
type Filter struct {
	User, Cluster, Namespace, Pod string
	// ExactCluster makes Cluster match as given even when empty: a
	// single-cluster kip shows no gateway's recordings.
	ExactCluster bool
	// Since and Until bound the session's start time.
	Since, Until time.Time
	// Limit caps the number returned, newest first; 0 means no cap.
	Limit int
}

// Store is where recordings can be listed and read back: the recording
// directory, an S3 bucket, or both merged.
type Store interface {
	// List returns the recordings f selects, newest first.
	List(ctx context.Context, f Filter) ([]Summary, error)
	// Open returns the recording with the given session ID, whole, as
	// written (header, events, seal).
	Open(ctx context.Context, id string) (io.ReadCloser, Summary, error)
}
