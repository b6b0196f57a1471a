package integration

import (
	"crypto/tls"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2/hpack"
)

// h2SizeCase is one request whose header list has a given shape.
type h2SizeCase struct {
	name  string
	extra []hpack.HeaderField // after the request's own fields; the last goes in a frame of its own
	// kip and upstream are the verdicts expected from each (h2Verdict's
	// String): a status, or how the connection or stream ended.
	kip, upstream string
}

// h2Authority is the :authority of every request, the same for both
// servers so that both see the same bytes.
const h2Authority = "apiserver"

// TestHTTP2OversizedHeadersLikeKubeAPIServer sends the same HTTP/2 header
// blocks to kip and to kube-apiserver directly: header lists just under,
// at and past the limit (net/http's MaxHeaderBytes, 1 MiB, plus the 320
// bytes golang.org/x/net/http2 adds for ten fields' overhead; there is no
// 4 KiB slack as over HTTP/1.1), far past it (4 MiB), as one huge header
// and as tens of thousands of small ones that HPACK indexing makes cheap
// on the wire.
//
// Verdict: kube-apiserver and kip agree wherever kip does not forward.
// Up to the limit kube-apiserver serves the request; kip serves it too
// when 1 KiB under, and answers 431 (a Status) at the limit or with one
// field of 1 MiB, when the headers it adds to forward the request no
// longer fit the upstream's limit. One byte past the limit, ending in the
// same frame: both answer net/http's plain-text 431 before any handler
// runs. 4 KiB past the limit (HTTP/1.1's slack), ending in the same
// frame: kube-apiserver sends GOAWAY PROTOCOL_ERROR, kip answers 431 and
// keeps the connection. Both refuse; they differ because kube-apiserver
// v1.37.2 is built with golang.org/x/net v0.57.0, which closes the
// connection when a frame is more than twice the header budget left,
// while kip's v0.60.0 counts the unused trailer budget too, so it reads
// that last frame, finds the list too long and refuses the stream alone. Past the limit with another CONTINUATION frame to come: both send
// GOAWAY PROTOCOL_ERROR and close (CVE-2023-45288's fix). A single field
// longer than the limit: both send GOAWAY COMPRESSION_ERROR at its first
// frame. After each, kip serves a normal client as before.
func TestHTTP2OversizedHeadersLikeKubeAPIServer(t *testing.T) {
	cert, normal := namespaceReader(t, "h2-big-headers")
	targets := []h2Target{kipTarget(t, stack.KipURL), upstreamTarget(t)}
	base := h2GetFields(h2Authority)
	room := http2HeaderListLimit - listSize(base)
	for _, tc := range []h2SizeCase{
		{name: "1 KiB under the limit, headers of 8 KiB", extra: fillTo(room - 1024), kip: "200", upstream: "200"},
		{name: "exactly the limit", extra: fillTo(room), kip: "431", upstream: "200"},
		{name: "one byte past the limit, in the last frame", extra: fillTo(room + 1), kip: "431", upstream: "431"},
		{name: "past the limit by HTTP/1.1's 4 KiB slack, in the last frame", extra: fillTo(room + 4096), kip: "431", upstream: "GOAWAY PROTOCOL_ERROR"},
		{name: "4 MiB of 8 KiB headers", extra: fillTo(4 << 20), kip: "GOAWAY PROTOCOL_ERROR", upstream: "GOAWAY PROTOCOL_ERROR"},
		{name: "one header of 1 MiB", extra: oneHeader(1 << 20), kip: "431", upstream: "200"},
		{name: "one header of 1 MiB and 1 KiB", extra: oneHeader(1<<20 + 1<<10), kip: "GOAWAY COMPRESSION_ERROR", upstream: "GOAWAY COMPRESSION_ERROR"},
		{name: "one header of 4 MiB", extra: oneHeader(4 << 20), kip: "GOAWAY COMPRESSION_ERROR", upstream: "GOAWAY COMPRESSION_ERROR"},
		{name: "small indexed headers up to 1 KiB under the limit", extra: smallHeaders((room - 1024) / 36), kip: "200", upstream: "200"},
		{name: "100,000 small indexed headers, 3.4 MiB of list", extra: smallHeaders(100_000), kip: "GOAWAY PROTOCOL_ERROR", upstream: "GOAWAY PROTOCOL_ERROR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			block, split := hpackBlock(base, tc.extra)
			t.Logf("header list %d bytes (limit %d), %d bytes on the wire", listSize(base)+listSize(tc.extra), http2HeaderListLimit, len(block))
			for _, target := range targets {
				want := tc.kip
				if target.name != "kip" {
					want = tc.upstream
				}
				got, body := sendHeaderBlock(t, target, cert, block, split)
				t.Logf("%s: %v %.120q", target.name, got, body)
				if got.String() != want {
					t.Errorf("%s answered %v, want %s: %.300s", target.name, got, want, body)
				}
				// Where kube-apiserver serves the request, kip's own 431
				// is a Status; net/http's, before any handler, is text.
				if target.name == "kip" && got.status == 431 && tc.upstream == "200" {
					mustRawStatus(t, rawResponse{code: got.status, body: body}, 431)
				}
			}
			if err := responsive(normal, stack.KipURL+"/api/v1/namespaces/default"); err != nil {
				t.Fatalf("after the request: %v", err)
			}
		})
	}
}

// sendHeaderBlock sends block as GET on stream 1 of a new connection to
// target and returns how it ended, and the answer's body.
func sendHeaderBlock(t *testing.T, target h2Target, cert *tls.Certificate, block []byte, split int) (h2Verdict, []byte) {
	t.Helper()
	s := dialH2(t, target, cert)
	// The server may stop reading once it has refused: what it answers
	// is what counts, so a failed write is not the end.
	go func() { _ = s.writeBlock(block, split, true) }()
	v, body, err := s.result(time.Minute)
	if err != nil {
		t.Fatalf("%s: %v", target.name, err)
	}
	return v, body
}

// fillTo is headers of 8 KiB values, and a last one that brings their
// list size to exactly size.
func fillTo(size int) []hpack.HeaderField {
	var h []hpack.HeaderField
	for i := 0; size > 0; i++ {
		name := "x-big-" + strconv.Itoa(i)
		n := min(8<<10, size-len(name)-32)
		if rest := size - (len(name) + n + 32); rest > 0 && rest < 64 {
			n -= 64 // leave room for a last field with a name
		}
		h = append(h, hpack.HeaderField{Name: name, Value: strings.Repeat("v", n)})
		size -= len(name) + n + 32
	}
	return h
}

// oneHeader is one field whose value is size bytes.
func oneHeader(size int) []hpack.HeaderField {
	return []hpack.HeaderField{{Name: "x-huge", Value: strings.Repeat("v", size)}}
}

// smallHeaders is n copies of a 4-byte field: 36 bytes of list each, one
// byte on the wire once HPACK has indexed it.
func smallHeaders(n int) []hpack.HeaderField {
	h := make([]hpack.HeaderField, n)
	for i := range h {
		h[i] = hpack.HeaderField{Name: "x-s", Value: "s"}
	}
	return h
}
