package recording

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/spdystream/spdy"
)

// forward opens the two streams kubectl port-forward opens for one
// connection to port: error, then data.
func (w *spdyWire) forward(id uint32, port, requestID string) *spdyWire {
	for i, typ := range []string{"error", "data"} {
		h := http.Header{}
		h.Set("streamType", typ)
		h.Set("port", port)
		h.Set("requestID", requestID)
		w.write(&spdy.SynStreamFrame{StreamId: spdy.StreamId(id + 2*uint32(i)), Headers: h})
	}
	return w
}

// tunnel wraps b in binary WebSocket messages of at most n bytes each, as
// client-go's TunnelingConnection does (masked when from the client).
func tunnel(client bool, b []byte, n int) []byte {
	var out []byte
	for len(b) > 0 {
		k := min(n, len(b))
		out = append(out, wsFrame(true, wsBinary, client, b[:k])...)
		b = b[k:]
	}
	return out
}

func TestPortForward(t *testing.T) {
	client := newSPDYWire(t).forward(1, "8080", "0").data(3, "secret request").
		forward(5, "5432", "1").forward(9, "8080", "2").data(11, "more secrets").bytes()
	server := newSPDYWire(t).write(&spdy.SynReplyFrame{StreamId: 1}).data(3, "secret answer").bytes()
	tests := []struct {
		name              string
		upgrade, protocol string
		client, server    []byte
		wantPorts         []uint16
		malformed         string
	}{{
		name: "SPDY", upgrade: "SPDY/3.1",
		client: client, server: server, wantPorts: []uint16{8080, 5432},
	}, {
		name: "SPDY tunnelled in WebSocket, frames split across messages", upgrade: "websocket", protocol: "SPDY/3.1+portforward.k8s.io",
		client: tunnel(true, client, 7), server: tunnel(false, server, 5), wantPorts: []uint16{8080, 5432},
	}, {
		name: "upgrade header in another letter case", upgrade: "spdy/3.1",
		client: client, server: server, wantPorts: []uint16{8080, 5432},
	}, {
		name: "a stream without a valid port names none", upgrade: "SPDY/3.1",
		client:    newSPDYWire(t).forward(1, "0", "0").forward(5, "http", "1").forward(9, "65536", "2").forward(13, "22", "3").bytes(),
		wantPorts: []uint16{22},
	}, {
		name: "too many ports", upgrade: "SPDY/3.1",
		client: manyPorts(t, portForwardMaxPorts+1), wantPorts: firstPorts(portForwardMaxPorts),
		malformed: "more than 64 ports",
	}, {
		name: "a text message in the tunnel", upgrade: "websocket", protocol: "SPDY/3.1+portforward.k8s.io",
		client: cat(tunnel(true, newSPDYWire(t).forward(1, "80", "0").bytes(), 1000), wsFrame(true, wsText, true, []byte("x"))),
		server: tunnel(false, server, 1000), wantPorts: []uint16{80},
		malformed: "websocket frames from the client: text message in a tunnel of binary messages",
	}, {
		name: "an exec channel protocol is not a port-forward", upgrade: "websocket", protocol: "v5.channel.k8s.io",
		client: client, server: server, wantPorts: []uint16{},
		malformed: `port-forward over "websocket" with subprotocol "v5.channel.k8s.io" is neither`,
	}, {
		name: "broken SPDY is still counted", upgrade: "SPDY/3.1",
		client: []byte{0x80, 0x02, 0x00, 0x01, 0, 0, 0, 0}, server: server, wantPorts: []uint16{},
		malformed: "SPDY frames from the client: control frame of SPDY version 2",
	}}
	for _, tt := range tests {
		for _, chunk := range []int{0, 1, 3} {
			t.Run(fmt.Sprintf("%s/pieces of %d", tt.name, chunk), func(t *testing.T) {
				c := &collector{}
				p := NewPortForward(tt.upgrade, tt.protocol, c)
				p.now = fixedClock(start)
				feedChunks(p.FromClient, tt.client, chunk)
				feedChunks(p.FromServer, tt.server, chunk)
				checkMalformed(t, tt.name, c, tt.malformed)
				p.End()
				p.End() // once only
				if len(c.events) != 1 || c.events[0].Stream != StreamPortForward {
					t.Fatalf("events %+v, want the summary only", c.events)
				}
				var got PortForwardSummary
				if err := json.Unmarshal(c.events[0].Data, &got); err != nil {
					t.Fatal(err)
				}
				want := PortForwardSummary{Ports: tt.wantPorts, FromClient: int64(len(tt.client)), ToClient: int64(len(tt.server))}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("summary %+v, want %+v", got, want)
				}
			})
		}
	}
}

func manyPorts(t testing.TB, n int) []byte {
	w := newSPDYWire(t)
	for i := range n {
		w.forward(uint32(1+4*i), strconv.Itoa(1000+i), strconv.Itoa(i))
	}
	return w.bytes()
}

func firstPorts(n int) []uint16 {
	var ports []uint16
	for i := range n {
		ports = append(ports, uint16(1000+i))
	}
	return ports
}

// TestPortForwardRecording proves what a port-forward recording holds: the
// summary line before the seal, and not one forwarded byte.
func TestPortForwardRecording(t *testing.T) {
	h := testHeader(false)
	h.Identity.Subresource, h.Identity.Command, h.Identity.Container = "portforward", nil, ""
	var out bytes.Buffer
	w, err := NewWriter(&out, h, testKey(t))
	if err != nil {
		t.Fatal(err)
	}
	p := NewPortForward("websocket", "SPDY/3.1+portforward.k8s.io", w)
	p.now = func() time.Time { return start.Add(1500 * time.Millisecond) }
	client := tunnel(true, newSPDYWire(t).forward(1, "8080", "0").data(3, "secret request").bytes(), 64)
	server := tunnel(false, newSPDYWire(t).data(3, "secret answer").bytes(), 64)
	p.FromClient(client)
	p.FromServer(server)
	p.End()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "secret") {
		t.Fatalf("the recording holds forwarded bytes:\n%s", out.String())
	}
	want := fmt.Sprintf(`1.5 kip-portforward {"ports":[8080],"fromClient":%d,"toClient":%d}`, len(client), len(server))
	if got := castLines(t, out.Bytes()); len(got) != 1 || got[0] != want {
		t.Fatalf("events %q, want %q", got, want)
	}
	if !strings.Contains(out.String(), `"kip-portforward":"port-forward summary"`) {
		t.Errorf("the header does not name the summary's code:\n%s", out.String())
	}
	if err := Verify(bytes.NewReader(out.Bytes()), testKey(t).Public()); err != nil {
		t.Fatal(err)
	}
}
