package recording

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"
)

func sessionEvents() []Event {
	return []Event{at(1, StreamStdin, "rm -rf /tmp/x\r"), at(2, StreamStdout, "done\r\n"),
		at(3, StreamStdin, "exit\r"), at(4, StreamError, `{"status":"Success"}`)}
}

func TestVerifyAcceptsWhatWriterSealed(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, key := range map[string]crypto.Signer{"Ed25519": testKey(t), "ECDSA P-256": ec} {
		var out bytes.Buffer
		w, err := NewWriter(&out, testHeader(true), key)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range sessionEvents() {
			w.Event(e)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := Verify(&out, key.Public()); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// No events at all: the seal follows the header.
	if err := Verify(bytes.NewReader(record(t, testHeader(false))), testKey(t).Public()); err != nil {
		t.Errorf("empty session: %v", err)
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	good := record(t, testHeader(true), sessionEvents()...)
	lines := strings.SplitAfter(string(good), "\n")
	lines = lines[:len(lines)-1] // the empty string after the last newline
	n := len(lines)              // header, 4 events, seal
	join := func(ls ...string) []byte { return []byte(strings.Join(ls, "")) }
	other := record(t, testHeader(true), at(1, StreamStdin, "ls\r"))
	otherSeal := strings.SplitAfter(string(other), "\n")
	otherKey, _, _ := ed25519.GenerateKey(rand.Reader) // the public half

	tests := []struct {
		name string
		in   []byte
		pub  crypto.PublicKey
		want error
	}{
		{"edited input", bytes.Replace(good, []byte("rm -rf /tmp/x"), []byte("ls -la /tmp/x"), 1), nil, ErrTampered},
		{"edited header (another user)", bytes.Replace(good, []byte("alice@"), []byte("bobby@"), 1), nil, ErrTampered},
		{"edited time", bytes.Replace(good, []byte("[0.002,"), []byte("[0.009,"), 1), nil, ErrTampered},
		{"line deleted", join(append(append([]string{}, lines[:2]...), lines[3:]...)...), nil, ErrTampered},
		{"lines reordered", join(lines[0], lines[2], lines[1], lines[3], lines[4], lines[5]), nil, ErrTampered},
		{"line duplicated", join(lines[0], lines[1], lines[1], lines[2], lines[3], lines[4], lines[5]), nil, ErrTampered},
		{"truncated before the seal", join(lines[:n-1]...), nil, ErrUnsealed},
		{"truncated inside the seal", good[:len(good)-20], nil, ErrUnsealed},
		{"truncated inside an event", good[:len(lines[0])+10], nil, ErrUnsealed},
		{"seal's newline removed", good[:len(good)-1], nil, ErrUnsealed},
		{"line appended after the seal", append(bytes.Clone(good), lines[1]...), nil, ErrUnsealed},
		{"seal moved from another recording", join(append(append([]string{}, lines[:n-1]...), otherSeal[len(otherSeal)-2])...), nil, ErrTampered},
		{"digest recomputed without the key", resealWithoutKey(t, good), nil, ErrBadSignature},
		{"signature from another key", good, otherKey, ErrOtherKey},
		{"header only", join(lines[0]), nil, ErrUnsealed},
		{"empty", nil, nil, ErrUnsealed},
	}
	for _, tt := range tests {
		pub := tt.pub
		if pub == nil {
			pub = testKey(t).Public()
		}
		if err := Verify(bytes.NewReader(tt.in), pub); !errors.Is(err, tt.want) {
			t.Errorf("%s: Verify = %v, want %v", tt.name, err, tt.want)
		}
	}
}

// resealWithoutKey edits the recording and writes the matching digest into
// its seal, keeping the old signature: what someone without kip's key can do.
func resealWithoutKey(t *testing.T, good []byte) []byte {
	edited := bytes.Replace(good, []byte("rm -rf"), []byte("rm -rX"), 1)
	i := bytes.LastIndexByte(edited[:len(edited)-1], '\n') + 1
	sum := sha256Hex(edited[:i])
	old := sha256Hex(good[:i])
	return bytes.Replace(edited, []byte(old), []byte(sum), 1)
}

func TestVerifyRefusesOtherInput(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(bytes.NewReader(record(t, testHeader(true))), &rsaKey.PublicKey); err == nil {
		t.Error("accepted an RSA key")
	}
	if _, err := NewWriter(&bytes.Buffer{}, testHeader(true), rsaKey); err == nil {
		t.Error("NewWriter accepted an RSA key")
	}
	for _, in := range []string{"not json\n", `{"version":1}` + "\n", "[1, \"o\", \"x\"]\n"} {
		if err := Verify(strings.NewReader(in), testKey(t).Public()); err == nil {
			t.Errorf("Verify(%q) accepted", in)
		}
	}
}
