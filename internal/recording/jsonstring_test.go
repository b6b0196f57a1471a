package recording

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// appendJSONStringByByte is the escaping as it was before runs were copied
// whole: every byte looked at on its own. The fast one must agree with it
// byte for byte.
func appendJSONStringByByte(dst, s []byte) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	return append(dst, s[start:]...)
}

// escapeInPieces escapes s through buffers of capacity size, as the
// Writer does, writing each out when appendJSONString stops.
func escapeInPieces(t *testing.T, s []byte, size int) []byte {
	t.Helper()
	var out []byte
	buf := make([]byte, 0, size)
	for len(s) > 0 {
		var n int
		buf, n = appendJSONString(buf, s)
		if cap(buf) != size {
			t.Fatalf("buffer of %d bytes grew to %d", size, cap(buf))
		}
		if n > 0 && n < len(s) && !utf8.RuneStart(s[n]) && utf8.Valid(s[max(0, n-3):n+1]) {
			t.Fatalf("cut inside a character at %d of %q", n, s)
		}
		if n == 0 && len(buf) == 0 {
			t.Fatalf("no progress into an empty buffer of %d bytes with %q", size, s[:min(len(s), 8)])
		}
		out = append(out, buf...)
		buf = buf[:0]
		s = s[n:]
	}
	return out
}

// randomText mixes what terminals send: plain runs, escapes, quotes,
// multi-byte characters, bytes that are not UTF-8 and cut characters.
func randomText(r *rand.Rand) []byte {
	pieces := []string{"plain text ", "a", "0123456789abcdef", "\x1b[0m", "\r\n", "\t", `"`, `\`, "\x00", "\x7f",
		"é", "€", "😀", "\ufffd", "\xff", "\xc3", "\xe2\x82", "\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80"}
	var b []byte
	for range r.IntN(64) {
		if r.IntN(4) == 0 {
			b = append(b, byte(r.IntN(256)))
			continue
		}
		b = append(b, strings.Repeat(pieces[r.IntN(len(pieces))], 1+r.IntN(12))...)
	}
	return b
}

func TestAppendJSONStringMatchesByteByByte(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 2026))
	fixed := [][]byte{nil, []byte("12345678"), []byte("1234567\""), []byte("\"1234567"), []byte("abcdefgh\x1fijklmnop"),
		[]byte("abcdefg\x80"), []byte("~~~~~~~~"), []byte(" !#$%&'()*+,-./[]^_`{|}~"), bytes.Repeat([]byte{0x20}, 9)}
	for i := range 20000 {
		s := randomText(r)
		if i < len(fixed) {
			s = fixed[i]
		}
		want := appendJSONStringByByte(nil, s)
		got, n := appendJSONString(make([]byte, 0, 6*len(s)), s)
		if n != len(s) || !bytes.Equal(got, want) {
			t.Fatalf("appendJSONString(%q) = %q (took %d of %d), want %q", s, got, n, len(s), want)
		}
		for _, size := range []int{6, 7, 11, 64} {
			if got := escapeInPieces(t, s, size); !bytes.Equal(got, want) {
				t.Fatalf("in buffers of %d, %q became %q, want %q", size, s, got, want)
			}
		}
		var back string
		if err := json.Unmarshal(append(append([]byte(`"`), want...), '"'), &back); err != nil {
			t.Fatalf("%q escaped to %q, not a JSON string: %v", s, want, err)
		}
	}
}

func TestPlain8(t *testing.T) {
	for c := range 256 {
		for pos := range 8 {
			word := bytes.Repeat([]byte{'a'}, 8)
			word[pos] = byte(c)
			if got, want := plain8(le64(word)), jsonPlain[c]; got != want {
				t.Errorf("byte %#x at %d: plain %v, want %v", c, pos, got, want)
			}
		}
	}
}

func le64(b []byte) uint64 {
	var x uint64
	for i := 7; i >= 0; i-- {
		x = x<<8 | uint64(b[i])
	}
	return x
}

func FuzzAppendJSONString(f *testing.F) {
	f.Add([]byte("\x1b[32mok\x1b[0m \"q\" \\ \t€\xff\xe2\x82"), uint8(6))
	f.Fuzz(func(t *testing.T, s []byte, size uint8) {
		want := appendJSONStringByByte(nil, s)
		if got := escapeInPieces(t, s, 6+int(size)); !bytes.Equal(got, want) {
			t.Fatalf("%q became %q, want %q", s, got, want)
		}
	})
}

func BenchmarkAppendJSONString(b *testing.B) {
	for _, c := range []struct {
		name string
		text []byte
	}{
		{"BuildLog", terminalOutput(copyBuffer)},
		{"Plain", bytes.Repeat([]byte("plain printable text "), copyBuffer/21)},
		{"UTF8", bytes.Repeat([]byte("réglé à 10 € — ok "), copyBuffer/24)},
	} {
		buf := make([]byte, 0, 6*len(c.text))
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.text)))
			for b.Loop() {
				buf, _ = appendJSONString(buf[:0], c.text)
			}
		})
		b.Run(c.name+"/ByByte", func(b *testing.B) {
			b.SetBytes(int64(len(c.text)))
			for b.Loop() {
				buf = appendJSONStringByByte(buf[:0], c.text)
			}
		})
	}
}
