package recording

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"time"
)

var testMask = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// wsFrame builds one RFC 6455 frame; client frames are masked.
func wsFrame(fin bool, op byte, client bool, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	var maskBit byte
	if client {
		maskBit = 0x80
	}
	out := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		out = append(out, maskBit|byte(n))
	case n <= 0xffff:
		out = append(out, maskBit|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out = append(out, maskBit|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	if !client {
		return append(out, payload...)
	}
	out = append(out, testMask[:]...)
	for i, c := range payload {
		out = append(out, c^testMask[i&3])
	}
	return out
}

// msg is a whole binary message on channel ch.
func msg(client bool, ch byte, data string) []byte {
	return wsFrame(true, wsBinary, client, append([]byte{ch}, data...))
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestWebSocket(t *testing.T) {
	tests := []struct {
		name           string
		protocol       string
		client, server []byte
		want           string
		malformed      string // part of the error, if the stream is malformed
	}{{
		name:   "stdout and stderr from the server",
		server: cat(msg(false, 1, "hello "), msg(false, 2, "oops"), msg(false, 1, "world")),
		want:   "stdout=hello world stderr=oops",
	}, {
		name:   "masked stdin and resize from the client",
		client: cat(msg(true, 0, "ls -l\r"), msg(true, 4, `{"Width":120,"Height":40}`)),
		want:   `stdin=ls -l` + "\r" + ` resize={"Width":120,"Height":40}`,
	}, {
		name: "fragmented message with a ping between its fragments",
		client: cat(
			wsFrame(false, wsBinary, true, []byte("\x00ec")),
			wsFrame(true, wsPing, true, []byte("are you there")),
			wsFrame(false, wsContinuation, true, []byte("ho ")),
			wsFrame(true, wsContinuation, true, []byte("hi"))),
		want: "stdin=echo hi",
	}, {
		name:   "a message split so its channel byte is alone",
		server: cat(wsFrame(false, wsBinary, false, []byte{1}), wsFrame(true, wsContinuation, false, []byte("x"))),
		want:   "stdout=x",
	}, {
		name:     "exit status and v5 close-channel message",
		protocol: "v5.channel.k8s.io",
		client:   cat(msg(true, 0, "exit\n"), msg(true, 255, "\x00")),
		server:   cat(msg(false, 3, `{"status":"Success"}`), wsFrame(true, wsClose, false, []byte{0x03, 0xe8})),
		want:     `stdin=exit` + "\n" + ` error={"status":"Success"}`,
	}, {
		name:   "the client cannot write output into its recording",
		client: cat(msg(true, 1, "forged output"), msg(true, 2, "forged"), msg(true, 3, "forged"), msg(true, 0, "real")),
		want:   "stdin=real",
	}, {
		name:   "the server cannot write input into the recording",
		server: cat(msg(false, 0, "forged input"), msg(false, 4, "{}"), msg(false, 1, "ok")),
		want:   "stdout=ok",
	}, {
		name:   "empty messages and unknown channels are not recorded",
		server: cat(wsFrame(true, wsBinary, false, nil), msg(false, 1, ""), msg(false, 9, "?"), msg(false, 1, "y")),
		want:   "stdout=y",
	}, {
		name:   "16-bit and 64-bit lengths",
		server: cat(msg(false, 1, strings.Repeat("a", 300)), msg(false, 2, strings.Repeat("b", 70000))),
		want:   "stdout=" + strings.Repeat("a", 300) + " stderr=" + strings.Repeat("b", 70000),
	}, {
		name:     "base64 variant",
		protocol: "v4.base64.channel.k8s.io",
		client:   wsFrame(true, wsText, true, []byte("0bHMK")),
		server: cat(wsFrame(false, wsText, false, []byte("1aGVs")),
			wsFrame(true, wsContinuation, false, []byte("bG8="))),
		want: "stdin=ls\n stdout=hello",
	}, {
		name:      "base64 variant, not base64",
		protocol:  "base64.channel.k8s.io",
		server:    wsFrame(true, wsText, false, []byte("1!!!!")),
		malformed: "base64",
	}, {
		name:      "base64 variant, message ends mid-quantum",
		protocol:  "base64.channel.k8s.io",
		server:    wsFrame(true, wsText, false, []byte("1aGVsbG")),
		want:      "stdout=hel",
		malformed: "inside a quantum",
	}, {
		name:      "unmasked client frame",
		client:    cat(msg(true, 0, "a"), msg(false, 0, "b"), msg(true, 0, "c")),
		want:      "stdin=a",
		malformed: "must be masked",
	}, {
		name:      "masked server frame",
		server:    msg(true, 1, "x"),
		malformed: "must be masked",
	}, {
		name:      "reserved bits (a compression extension)",
		server:    append([]byte{0xc2}, msg(false, 1, "x")[1:]...),
		malformed: "reserved bits",
	}, {
		name:      "unknown opcode",
		server:    wsFrame(true, 0x3, false, []byte("\x01x")),
		malformed: "opcode",
	}, {
		name:      "continuation without a message",
		server:    wsFrame(true, wsContinuation, false, []byte("x")),
		malformed: "outside a message",
	}, {
		name:      "new message inside a fragmented one",
		server:    cat(wsFrame(false, wsBinary, false, []byte("\x01a")), msg(false, 1, "b")),
		want:      "stdout=a",
		malformed: "before the fragmented one ended",
	}, {
		name:      "control frame longer than 125 bytes",
		server:    wsFrame(true, wsPing, false, make([]byte, 126)),
		malformed: "125",
	}, {
		name:      "fragmented control frame",
		server:    wsFrame(false, wsPing, false, nil),
		malformed: "fragmented",
	}, {
		name:      "64-bit length with its top bit set",
		server:    []byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0, 1},
		malformed: "top bit",
	}, {
		name:      "frame after close",
		server:    cat(wsFrame(true, wsClose, false, nil), msg(false, 1, "hidden")),
		malformed: "after close",
	}}
	for _, tt := range tests {
		for _, chunk := range []int{0, 1, 3, 7} {
			protocol := tt.protocol
			if protocol == "" {
				protocol = "v4.channel.k8s.io"
			}
			var c collector
			p, err := NewWebSocket(protocol, &c)
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

func checkMalformed(t *testing.T, name string, c *collector, want string) {
	t.Helper()
	switch {
	case want == "" && len(c.malformed) != 0:
		t.Errorf("%s: unexpected malformed: %v", name, c.malformed)
	case want != "" && len(c.malformed) != 1:
		t.Errorf("%s: reported malformed %d times, want once", name, len(c.malformed))
	case want != "" && !strings.Contains(c.malformed[0].Error(), want):
		t.Errorf("%s: malformed %q, want it to mention %q", name, c.malformed[0], want)
	}
	if c.after != 0 {
		t.Errorf("%s: %d events after malformed", name, c.after)
	}
}

func TestWebSocketDoesNotModifyInput(t *testing.T) {
	in := cat(msg(true, 0, "secret"), msg(true, 0, strings.Repeat("z", 5000)))
	orig := bytes.Clone(in)
	p, _ := NewWebSocket("v5.channel.k8s.io", &collector{})
	p.FromClient(in)
	if !bytes.Equal(in, orig) {
		t.Fatal("parser modified the relayed bytes")
	}
}

func TestWebSocketUnknownProtocol(t *testing.T) {
	for _, proto := range []string{"", "portforward.k8s.io", "v6.channel.k8s.io", "V4.CHANNEL.K8S.IO"} {
		if _, err := NewWebSocket(proto, &collector{}); err == nil {
			t.Errorf("NewWebSocket(%q) accepted", proto)
		}
	}
}

func TestWebSocketHugeFrameIsStreamed(t *testing.T) {
	// A frame that claims 1 GiB is reported as it arrives, not buffered.
	var c collector
	p, _ := NewWebSocket("v4.channel.k8s.io", &c)
	hdr := []byte{0x82, 127, 0, 0, 0, 0, 0x40, 0, 0, 0, 1}
	p.FromServer(hdr)
	p.FromServer([]byte("abc"))
	if got := c.streams(); got != "stdout=abc" {
		t.Fatalf("got %q", got)
	}
}

func TestUnmaskMatchesByteByByte(t *testing.T) {
	mask := [4]byte{0x12, 0x34, 0x56, 0x78}
	src := []byte("a client's masked payload, longer than a word or two")
	for pos := range 4 {
		for n := range len(src) {
			got := make([]byte, n)
			next := unmask(got, src[:n], mask, pos)
			for i := range n {
				if want := src[i] ^ mask[(pos+i)&3]; got[i] != want {
					t.Fatalf("pos %d, %d bytes: byte %d is %#x, want %#x", pos, n, i, got[i], want)
				}
			}
			if next != (pos+n)&3 {
				t.Fatalf("pos %d, %d bytes: next position %d", pos, n, next)
			}
		}
	}
}
