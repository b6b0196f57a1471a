package recording

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
)

// The seal is the recording's last line, an event of kip's own code whose
// data is a JSON object:
//
//	[t, "kip-seal", "{\"alg\":…,\"key\":…,\"sha256\":…,\"sig\":…}"]
//
// sha256 is the hex digest of every byte before this line; sig signs
// sealContext followed by that digest (Ed25519 signs it as is, ECDSA its
// SHA-256). The context keeps a signature made for a recording from being
// valid for anything else kip's key signs.
var sealContext = []byte("kip.dev session recording seal v1\x00")

// maxSealLine bounds the last line Verify will read as a seal.
const maxSealLine = 4 << 10

// Errors of Verify, to be told apart with errors.Is.
var (
	ErrUnsealed     = errors.New("recording has no seal: kip stopped before the session ended, or the recording was truncated")
	ErrTampered     = errors.New("recording does not match its seal: it was changed after kip wrote it")
	ErrOtherKey     = errors.New("recording was sealed with another key")
	ErrBadSignature = errors.New("seal's signature is not valid")
)

type seal struct {
	Algorithm string `json:"alg"`
	Key       string `json:"key"`    // keyID of the public key
	SHA256    string `json:"sha256"` // hex
	Signature string `json:"sig"`    // base64
}

const (
	algEd25519 = "Ed25519"
	algECDSA   = "ECDSA-SHA256"
)

func algorithmOf(pub crypto.PublicKey) (string, error) {
	switch pub.(type) {
	case ed25519.PublicKey:
		return algEd25519, nil
	case *ecdsa.PublicKey:
		return algECDSA, nil
	}
	return "", fmt.Errorf("recordings are sealed with Ed25519 or ECDSA keys, not %T", pub)
}

// keyID names a public key: the SHA-256 of its PKIX encoding.
func keyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encoding the sealing key: %w", err)
	}
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

func sealMessage(digest []byte) []byte {
	return append(append([]byte(nil), sealContext...), digest...)
}

func sealLine(t float64, digest []byte, signer crypto.Signer) ([]byte, error) {
	pub := signer.Public()
	alg, err := algorithmOf(pub)
	if err != nil {
		return nil, err
	}
	id, err := keyID(pub)
	if err != nil {
		return nil, err
	}
	msg := sealMessage(digest)
	var sig []byte
	if alg == algEd25519 {
		sig, err = signer.Sign(rand.Reader, msg, crypto.Hash(0))
	} else {
		h := sha256.Sum256(msg)
		sig, err = signer.Sign(rand.Reader, h[:], crypto.SHA256)
	}
	if err != nil {
		return nil, fmt.Errorf("signing the recording: %w", err)
	}
	data, err := json.Marshal(seal{alg, id, hex.EncodeToString(digest), base64.StdEncoding.EncodeToString(sig)})
	if err != nil {
		return nil, err
	}
	quoted, err := json.Marshal(string(data))
	if err != nil {
		return nil, err
	}
	line := append([]byte{'['}, strconv.FormatFloat(t, 'f', -1, 64)...)
	line = append(line, `, "`+codeSeal+`", `...)
	line = append(line, quoted...)
	return append(line, "]\n"...), nil
}

// Verify checks that r is a whole recording sealed by the key pub: an
// asciicast v2 header first, a seal last, and every byte in between as kip
// wrote it. It reads r once, keeping a few KiB, whatever its size.
func Verify(r io.Reader, pub crypto.PublicKey) error {
	alg, err := algorithmOf(pub)
	if err != nil {
		return err
	}
	br := bufio.NewReaderSize(r, 64<<10)
	sum := sha256.New()
	header, err := br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, io.EOF) {
			return ErrUnsealed
		}
		return fmt.Errorf("reading the recording's header: %w", err)
	}
	var h struct{ Version int }
	if err := json.Unmarshal(header, &h); err != nil || h.Version != 2 {
		return errors.New("recording does not start with an asciicast v2 header")
	}
	sum.Write(header)
	last, err := hashAllButLastLine(br, sum)
	if err != nil {
		return err
	}
	s, err := parseSeal(last)
	if err != nil {
		return err
	}
	return s.check(alg, pub, sum.Sum(nil))
}

// hashAllButLastLine hashes r into sum, holding back its last line (which
// must end with a newline and fit in maxSealLine), and returns that line.
func hashAllButLastLine(r io.Reader, sum hash.Hash) ([]byte, error) {
	held := make([]byte, 0, 4*maxSealLine)
	chunk := make([]byte, 32<<10)
	hashed := false
	for {
		n, err := r.Read(chunk)
		held = append(held, chunk[:n]...)
		if len(held) > 2*maxSealLine {
			cut := len(held) - maxSealLine
			sum.Write(held[:cut])
			held = append(held[:0], held[cut:]...)
			hashed = true
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading the recording: %w", err)
		}
	}
	if len(held) == 0 || held[len(held)-1] != '\n' {
		return nil, ErrUnsealed
	}
	start := bytes.LastIndexByte(held[:len(held)-1], '\n') + 1
	if start == 0 && hashed {
		return nil, ErrUnsealed // the last line is too long to be a seal
	}
	sum.Write(held[:start])
	return held[start:], nil
}

func parseSeal(line []byte) (seal, error) {
	var ev []json.RawMessage
	var code, data string
	if json.Unmarshal(line, &ev) != nil || len(ev) != 3 ||
		json.Unmarshal(ev[1], &code) != nil || code != codeSeal ||
		json.Unmarshal(ev[2], &data) != nil {
		return seal{}, ErrUnsealed
	}
	var s seal
	if err := json.Unmarshal([]byte(data), &s); err != nil {
		return seal{}, fmt.Errorf("%w: unreadable seal", ErrTampered)
	}
	return s, nil
}

func (s seal) check(alg string, pub crypto.PublicKey, digest []byte) error {
	want, err := keyID(pub)
	if err != nil {
		return err
	}
	if s.Key != want || s.Algorithm != alg {
		return fmt.Errorf("%w (%s %s)", ErrOtherKey, s.Algorithm, s.Key)
	}
	if s.SHA256 != hex.EncodeToString(digest) {
		return ErrTampered
	}
	sig, err := base64.StdEncoding.DecodeString(s.Signature)
	if err != nil {
		return ErrBadSignature
	}
	msg := sealMessage(digest)
	var ok bool
	switch k := pub.(type) {
	case ed25519.PublicKey:
		ok = ed25519.Verify(k, msg, sig)
	case *ecdsa.PublicKey:
		h := sha256.Sum256(msg)
		ok = ecdsa.VerifyASN1(k, h[:], sig)
	}
	if !ok {
		return ErrBadSignature
	}
	return nil
}
