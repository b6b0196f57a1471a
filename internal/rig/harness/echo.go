package harness

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/kip-proxy/kip/internal/rig/testnode"
)

// EchoServer answers every connection with what it receives and reports
// the sha256 of what each connection carried once the client closes it:
// the far end of a port-forward, proving every byte came back.
type EchoServer struct {
	Port     int
	received chan [32]byte
}

// StartEchoServer serves on a loopback port the test node's pods can
// forward to, until the test ends.
func StartEchoServer(t testing.TB) *EchoServer {
	t.Helper()
	s := &EchoServer{received: make(chan [32]byte, 16)}
	ln, err := testnode.ServePort(func(conn net.Conn) {
		h := sha256.New()
		if _, err := io.Copy(conn, io.TeeReader(conn, h)); err != nil {
			return
		}
		var sum [32]byte
		copy(sum[:], h.Sum(nil))
		select {
		case s.received <- sum:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	s.Port = ln.Addr().(*net.TCPAddr).Port
	return s
}

// NextReceived waits for the sha256 of a connection the server finished.
func (s *EchoServer) NextReceived(t testing.TB) [32]byte {
	t.Helper()
	select {
	case sum := <-s.received:
		return sum
	case <-time.After(time.Minute):
		t.Fatal("the echo server saw no connection end")
		return [32]byte{}
	}
}

// EchoOnNewConn sends size random bytes through a new connection to addr,
// checks that the same bytes come back, closes the connection and returns
// the sha256 of what was sent.
func EchoOnNewConn(t testing.TB, addr string, size int64, seed uint64) [32]byte {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Error(err)
		return [32]byte{}
	}
	defer func() { _ = conn.Close() }()
	return EchoOnConn(t, conn, size, seed)
}

// EchoOnConn sends size random bytes on conn while reading them back, and
// fails unless what came back is what was sent. It may run in a goroutine
// other than the test's.
func EchoOnConn(t testing.TB, conn net.Conn, size int64, seed uint64) [32]byte {
	t.Helper()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Minute))
	defer func() { _ = conn.SetDeadline(time.Time{}) }()
	sent, back := sha256.New(), sha256.New()
	written := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.MultiWriter(conn, sent), io.LimitReader(RandomReader(seed), size))
		written <- err
	}()
	n, err := io.CopyN(back, conn, size)
	if werr := <-written; werr != nil {
		t.Errorf("sending: %v", werr)
		return [32]byte{}
	}
	if err != nil {
		t.Errorf("got %d of %d bytes back: %v", n, size, err)
		return [32]byte{}
	}
	var sum [32]byte
	copy(sum[:], sent.Sum(nil))
	if !bytes.Equal(back.Sum(nil), sum[:]) {
		t.Errorf("%d bytes came back different from what was sent", size)
	}
	return sum
}

// RandomReader is an endless stream of bytes that seed alone decides, so
// a test can send them and check them again without keeping them.
func RandomReader(seed uint64) io.Reader {
	var key [32]byte
	copy(key[:], strconv.FormatUint(seed, 10))
	return rand.NewChaCha8(key)
}

// RandomBytes is the first n bytes of RandomReader(seed).
func RandomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	_, _ = io.ReadFull(RandomReader(seed), b)
	return b
}
