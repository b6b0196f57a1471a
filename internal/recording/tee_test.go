package recording

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// fakeUpstream reads from in, collects writes and fails once asked to.
type fakeUpstream struct {
	in      *bytes.Reader
	written bytes.Buffer
	failAt  int // a Write fails after this many bytes in total
}

func (f *fakeUpstream) Read(b []byte) (int, error) { return f.in.Read(b) }
func (f *fakeUpstream) Close() error               { return nil }
func (f *fakeUpstream) Write(b []byte) (int, error) {
	if room := f.failAt - f.written.Len(); room < len(b) {
		f.written.Write(b[:room])
		return room, errors.New("broken pipe")
	}
	return f.written.Write(b)
}

type rawParser struct{ client, server bytes.Buffer }

func (r *rawParser) FromClient(b []byte) { r.client.Write(b) }
func (r *rawParser) FromServer(b []byte) { r.server.Write(b) }

func TestTeeShowsExactlyWhatWasRelayed(t *testing.T) {
	up := &fakeUpstream{in: bytes.NewReader([]byte("from the server")), failAt: 12}
	var p rawParser
	conn := Tee(up, &p)
	got, err := io.ReadAll(conn)
	if err != nil || string(got) != "from the server" {
		t.Fatalf("read %q, %v", got, err)
	}
	if n, err := conn.Write([]byte("from the ")); n != 9 || err != nil {
		t.Fatalf("write: %d, %v", n, err)
	}
	// A short write: the parser sees only the bytes that went through.
	if n, err := conn.Write([]byte("client")); n != 3 || err == nil {
		t.Fatalf("short write: %d, %v", n, err)
	}
	if p.server.String() != "from the server" || p.client.String() != "from the cli" {
		t.Fatalf("parser saw %q from the server and %q from the client", p.server.String(), p.client.String())
	}
}
