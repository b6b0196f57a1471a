package recording

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moby/spdystream/spdy"
)

// spdyWire builds one side's frames with spdystream's own framer, so the
// header blocks share one zlib context exactly as kubectl's do.
type spdyWire struct {
	t   testing.TB
	buf bytes.Buffer
	f   *spdy.Framer
}

func newSPDYWire(t testing.TB) *spdyWire {
	w := &spdyWire{t: t}
	f, err := spdy.NewFramer(&w.buf, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.f = f
	return w
}

func (w *spdyWire) write(fr spdy.Frame) *spdyWire {
	if err := w.f.WriteFrame(fr); err != nil {
		w.t.Fatal(err)
	}
	return w
}

func (w *spdyWire) syn(id uint32, streamType string) *spdyWire {
	h := http.Header{}
	h.Set("streamType", streamType)
	return w.write(&spdy.SynStreamFrame{StreamId: spdy.StreamId(id), Headers: h})
}

func (w *spdyWire) data(id uint32, d string) *spdyWire {
	return w.write(&spdy.DataFrame{StreamId: spdy.StreamId(id), Data: []byte(d)})
}

func (w *spdyWire) bytes() []byte { return bytes.Clone(w.buf.Bytes()) }

// kubectlStreams opens the streams of kubectl exec -it: error, stdin,
// stdout, resize (a TTY has no stderr).
func kubectlStreams(t testing.TB) *spdyWire {
	return newSPDYWire(t).syn(1, "error").syn(3, "stdin").syn(5, "stdout").syn(7, "resize")
}

func TestSPDY(t *testing.T) {
	replies := newSPDYWire(t).write(&spdy.SynReplyFrame{StreamId: 1, Headers: http.Header{"X": {"y"}}}).
		write(&spdy.SynReplyFrame{StreamId: 3}).write(&spdy.SynReplyFrame{StreamId: 5})
	tests := []struct {
		name           string
		client, server []byte
		want           string
		malformed      string
	}{{
		name:   "kubectl exec -it",
		client: kubectlStreams(t).data(3, "ls\r").data(7, `{"Width":100,"Height":30}`).bytes(),
		server: replies.data(5, "file\r\n").data(1, `{"status":"Success"}`).bytes(),
		want:   "stdin=ls\r stdout=file\r\n error=" + `{"status":"Success"}` + ` resize={"Width":100,"Height":30}`,
	}, {
		name:   "non-TTY with stderr, interleaved pings and window updates",
		client: newSPDYWire(t).syn(1, "stdout").write(&spdy.PingFrame{Id: 1}).syn(3, "stderr").bytes(),
		server: newSPDYWire(t).data(1, "out").write(&spdy.WindowUpdateFrame{StreamId: 1, DeltaWindowSize: 9}).
			data(3, "err").write(&spdy.PingFrame{Id: 1}).data(1, "put").bytes(),
		want: "stdout=output stderr=err",
	}, {
		name: "a HEADERS frame from the client keeps the header context in step",
		client: newSPDYWire(t).syn(1, "stdin").
			write(&spdy.HeadersFrame{StreamId: 1, Headers: http.Header{"Foo": {strings.Repeat("bar", 50)}}}).
			syn(3, "stdin2").syn(5, "stdout").data(1, "in").bytes(),
		server: newSPDYWire(t).data(5, "out").data(3, "ignored").bytes(),
		want:   "stdin=in stdout=out",
	}, {
		name:   "the client cannot write output into its recording",
		client: kubectlStreams(t).data(5, "forged").data(1, "forged").data(3, "real").bytes(),
		want:   "stdin=real",
	}, {
		name:   "the server cannot write input into the recording",
		client: kubectlStreams(t).bytes(),
		server: newSPDYWire(t).data(3, "forged").data(7, "{}").data(5, "ok").bytes(),
		want:   "stdout=ok",
	}, {
		name:   "data on streams never opened, or opened by the server, is not recorded",
		client: newSPDYWire(t).syn(1, "stdin").data(9, "x").bytes(),
		server: newSPDYWire(t).syn(2, "stdout").data(2, "pushed").bytes(),
	}, {
		name:   "empty DATA frames",
		client: kubectlStreams(t).data(3, "").data(3, "a").bytes(),
		want:   "stdin=a",
	}, {
		name:      "control frame of another SPDY version",
		client:    []byte{0x80, 0x02, 0x00, 0x01, 0, 0, 0, 0},
		malformed: "version 2",
	}, {
		name:      "SYN_STREAM too large to decode",
		client:    []byte{0x80, 0x03, 0x00, 0x01, 0, 0x01, 0, 0},
		malformed: "control frame of 65536 bytes",
	}, {
		name:      "header block that is not zlib",
		client:    append([]byte{0x80, 0x03, 0x00, 0x01, 0, 0, 0, 14, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}, "junk"...),
		malformed: "SPDY frames from the client",
	}, {
		name:      "truncated header block",
		client:    truncatedSyn(t),
		malformed: "SPDY frames from the client",
	}, {
		name:      "stream opened twice",
		client:    newSPDYWire(t).syn(1, "stdin").data(1, "a").syn(1, "stdout").data(1, "b").bytes(),
		want:      "stdin=a",
		malformed: "opened twice",
	}, {
		name:      "a second stream of one type",
		client:    newSPDYWire(t).syn(1, "stdin").data(1, "a").syn(3, "stdin").data(3, "fake").bytes(),
		want:      "stdin=a",
		malformed: "a second stdin stream",
	}, {
		name:      "too many streams",
		client:    manyStreams(t, spdyMaxStreams+1),
		malformed: "more than 16 streams",
	}}
	for _, tt := range tests {
		for _, chunk := range []int{0, 1, 5, 9} {
			var c collector
			p, err := NewSPDY(&c)
			if err != nil {
				t.Fatal(err)
			}
			p.now = fixedClock(time.Unix(0, 0))
			feedChunks(p.FromClient, tt.client, chunk)
			feedChunks(p.FromServer, tt.server, chunk)
			if got := c.streams(); got != tt.want {
				t.Errorf("%s, %d-byte pieces: recorded %q, want %q", tt.name, chunk, got, tt.want)
			}
			checkMalformed(t, tt.name, &c, tt.malformed)
		}
	}
}

func truncatedSyn(t *testing.T) []byte {
	b := newSPDYWire(t).syn(1, "stdin").bytes()
	// Claim twelve bytes fewer than the header block has; the rest reads
	// as a DATA frame.
	b[7] -= 12
	return b
}

func manyStreams(t *testing.T, n int) []byte {
	w := newSPDYWire(t)
	for i := range n {
		w.syn(uint32(2*i+1), fmt.Sprint("s", i))
	}
	return w.bytes()
}

func TestSPDYDataFrameIsStreamed(t *testing.T) {
	// A DATA frame of the largest size is reported as it arrives.
	var c collector
	p, _ := NewSPDY(&c)
	p.FromClient(kubectlStreams(t).bytes())
	p.FromServer([]byte{0, 0, 0, 5, 0, 0xff, 0xff, 0xff})
	p.FromServer([]byte("abc"))
	if got := c.streams(); got != "stdout=abc" {
		t.Fatalf("got %q", got)
	}
	if len(p.client.ctl) > 512 {
		t.Fatalf("kept a %d-byte control buffer", len(p.client.ctl))
	}
}

func TestSPDYDoesNotModifyInput(t *testing.T) {
	in := kubectlStreams(t).data(3, "secret").bytes()
	orig := bytes.Clone(in)
	p, _ := NewSPDY(&collector{})
	p.FromClient(in)
	if !bytes.Equal(in, orig) {
		t.Fatal("parser modified the relayed bytes")
	}
}

// TestSPDYDropsItsFramerBetweenFeeds holds the parser to what an open
// session may keep: no framer (with its zlib window) once the bytes given
// are parsed, while the client's header blocks fit spdyMaxHistory; past
// that, the framer is kept and decoding goes on as before.
func TestSPDYDropsItsFramerBetweenFeeds(t *testing.T) {
	// Header values that do not compress, so that the history fills.
	noise := func(i int) string {
		var b strings.Builder
		for j := range 40 {
			fmt.Fprintf(&b, "%08x", (i*40+j)*2654435761)
		}
		return b.String()
	}
	for _, c := range []struct {
		name      string
		headers   int // HEADERS frames before the last stream opens
		keepsOnce bool
	}{{"kubectl's few header blocks", 0, false}, {"header blocks past the history's bound", 20, true}} {
		w := newSPDYWire(t).syn(1, "stdin")
		for i := range c.headers {
			w.write(&spdy.HeadersFrame{StreamId: 1, Headers: http.Header{"Noise": {noise(i)}}})
		}
		w.syn(3, "error").syn(5, "stdout").syn(7, "resize").data(1, "in")
		var col collector
		p, err := NewSPDY(&col)
		if err != nil {
			t.Fatal(err)
		}
		// One frame per feed, so that every header block after the first
		// is decoded by a framer rebuilt from the history, or by the
		// framer kept.
		client := w.bytes()
		for len(client) > 0 {
			n := 8 + int(uint32(client[5])<<16|uint32(client[6])<<8|uint32(client[7]))
			p.FromClient(client[:n])
			client = client[n:]
			if !p.keepFramer && p.framer != nil {
				t.Fatalf("%s: framer kept between feeds", c.name)
			}
		}
		p.FromServer(newSPDYWire(t).data(5, "out").data(3, "{}").bytes())
		if got, want := col.streams(), "stdin=in stdout=out error={}"; got != want {
			t.Errorf("%s: recorded %q, want %q", c.name, got, want)
		}
		checkMalformed(t, c.name, &col, "")
		if p.keepFramer != c.keepsOnce || (p.keepFramer && p.history != nil) || len(p.history) > spdyMaxHistory {
			t.Errorf("%s: keepFramer %v with %d bytes of history", c.name, p.keepFramer, len(p.history))
		}
	}
}
