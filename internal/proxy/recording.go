package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/klog/v2"

	"github.com/kip-proxy/kip/internal/recording"
)

// Recorder opens the recording of one exec, attach or port-forward session.
type Recorder interface {
	// Open starts recording the session r asked for, once the upstream
	// agreed to it. r carries the chain's context: user, request info,
	// audit ID.
	Open(r *http.Request) (Recording, error)
	// Ready says whether recordings can be kept now: nil when their
	// storage works. It must answer at once, from what the recorder last
	// saw, as a session waits on it.
	Ready(ctx context.Context) error
}

// Recording is one session's recording: it hears what the session's
// streams carried, and Close, called once the session ends, seals it.
type Recording interface {
	recording.Sink
	Close() error
}

// WithRecorder records every exec, attach and port-forward session the
// proxy relays with rec.
func WithRecorder(rec Recorder) Option {
	return func(p *Proxy) { p.recorder = rec }
}

// RequireRecording refuses, with 503, every exec, attach and
// port-forward while the recorder is not Ready, before the upstream sees
// it; and closes a session whose recording cannot be opened before a byte
// of it is relayed. Without it such sessions run unrecorded, which an
// operator may prefer to refusing everyone while a disk is full.
func RequireRecording() Option {
	return func(p *Proxy) { p.recordingRequired = true }
}

// errUnrecordable is why a session was refused: recording is required
// and cannot be done. What failed (a path, a bucket) is for kip's log,
// not for the caller.
var errUnrecordable = errors.New("kip must record this session and cannot now: its recording storage is unavailable; try again shortly, or tell kip's operator")

// isSession says whether r asks for a session recording is required for:
// exec, attach or port-forward.
func isSession(r *http.Request) bool {
	info, ok := request.RequestInfoFrom(r.Context())
	return ok && info.IsResourceRequest && info.Resource == "pods" &&
		(info.Subresource == "exec" || info.Subresource == "attach" || info.Subresource == "portforward")
}

// recordingReady fails when r is a session that recording is required
// for and the recorder is not ready.
func (p *Proxy) recordingReady(r *http.Request) error {
	if p.recorder == nil || !p.recordingRequired || !isSession(r) {
		return nil
	}
	if err := p.recorder.Ready(r.Context()); err != nil {
		klog.ErrorS(err, "Refusing a session that must be recorded", "uri", r.RequestURI)
		return errUnrecordable
	}
	return nil
}

// isRecorded says whether res starts a session to record: an exec,
// attach or port-forward the upstream switched protocols for. A
// port-forward's recording logs the session (ports, bytes each way), not
// the bytes of the user's own protocol.
func isRecorded(res *http.Response) bool {
	if res.StatusCode != http.StatusSwitchingProtocols {
		return false
	}
	info, ok := request.RequestInfoFrom(res.Request.Context())
	return ok && info.IsResourceRequest && info.Resource == "pods" &&
		(info.Subresource == "exec" || info.Subresource == "attach" || info.Subresource == "portforward")
}

// record makes res's upgraded connection show its bytes to a recording.
// A recording that cannot be opened does not end the session: it is
// relayed unrecorded, and the failure logged. When recording is required
// it does, with errUnrecordable, before anything was relayed.
func (p *Proxy) record(res *http.Response) error {
	upstream, ok := res.Body.(io.ReadWriteCloser)
	if !ok {
		return nil
	}
	rec, err := p.recorder.Open(res.Request)
	if err != nil {
		if p.recordingRequired {
			klog.ErrorS(err, "Closing a session that must be recorded", "path", res.Request.URL.Path)
			return errUnrecordable
		}
		klog.ErrorS(err, "Relaying a session unrecorded", "path", res.Request.URL.Path)
		return nil
	}
	body := upstream
	var end func()
	if info, ok := request.RequestInfoFrom(res.Request.Context()); ok && info.Subresource == "portforward" {
		pf := recording.NewPortForward(res.Header.Get("Upgrade"), res.Header.Get("Sec-WebSocket-Protocol"), rec)
		body, end = recording.Tee(upstream, pf), pf.End
	} else if parser, err := parserFor(res, rec); err != nil {
		// The recording then says why it holds nothing.
		rec.Malformed(err)
	} else {
		body = recording.Tee(upstream, parser)
	}
	res.Body = &recordedConn{ReadWriteCloser: body, upstream: upstream, rec: rec, end: end}
	return nil
}

// parserFor picks the parser of the protocol the upstream agreed to.
func parserFor(res *http.Response, sink recording.Sink) (recording.Parser, error) {
	if strings.EqualFold(res.Header.Get("Upgrade"), "SPDY/3.1") {
		return recording.NewSPDY(sink)
	}
	if !strings.EqualFold(res.Header.Get("Upgrade"), "websocket") {
		return nil, errors.New("the upstream switched to a protocol that is neither SPDY/3.1 nor WebSocket")
	}
	return recording.NewWebSocket(res.Header.Get("Sec-WebSocket-Protocol"), sink)
}

// recordedConn seals the recording when the session's connection closes.
// httputil.ReverseProxy may close it twice: when the copy ends and when
// the request's context does.
type recordedConn struct {
	io.ReadWriteCloser
	upstream io.ReadWriteCloser
	rec      Recording
	end      func() // a port-forward's summary, before the seal; or nil
	once     sync.Once
}

// CloseWrite passes the client's half-close on, as the relay does for an
// unrecorded session.
func (c *recordedConn) CloseWrite() error {
	if cw, ok := c.upstream.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return fmt.Errorf("CloseWrite: %w", errors.ErrUnsupported)
}

func (c *recordedConn) Close() error {
	err := c.ReadWriteCloser.Close()
	c.once.Do(func() {
		if c.end != nil {
			c.end()
		}
		if rerr := c.rec.Close(); rerr != nil {
			klog.ErrorS(rerr, "Sealing a session's recording")
		}
	})
	return err
}
