package recording

import "io"

// Tee wraps the upstream side of an upgraded connection so that p sees what
// is relayed each way: what is read from the upstream came from the server,
// what is written to it came from the client. It is meant for
// httputil.ReverseProxy's upgrade path, where ModifyResponse may replace a
// 101 response's Body, which must stay an io.ReadWriteCloser.
//
// p sees only bytes that were relayed, after the relay has them; it adds no
// buffering and no error of its own.
func Tee(upstream io.ReadWriteCloser, p Parser) io.ReadWriteCloser {
	return &tee{upstream, p}
}

type tee struct {
	io.ReadWriteCloser
	p Parser
}

func (t *tee) Read(b []byte) (int, error) {
	n, err := t.ReadWriteCloser.Read(b)
	if n > 0 {
		t.p.FromServer(b[:n])
	}
	return n, err
}

func (t *tee) Write(b []byte) (int, error) {
	n, err := t.ReadWriteCloser.Write(b)
	if n > 0 {
		t.p.FromClient(b[:n])
	}
	return n, err
}
