package recording

import (
	"encoding/binary"
	"unicode/utf8"
)

// jsonPlain says which bytes a JSON string holds as they are: printable
// ASCII but the quote and the backslash. jsonEscape is what every other
// ASCII byte becomes.
var jsonPlain, jsonEscape = func() (plain [256]bool, escape [utf8.RuneSelf]string) {
	const hexDigits = "0123456789abcdef"
	for c := range utf8.RuneSelf {
		switch {
		case c == '"' || c == '\\':
			escape[c] = `\` + string(rune(c))
		case c == '\n':
			escape[c] = `\n`
		case c == '\r':
			escape[c] = `\r`
		case c == '\t':
			escape[c] = `\t`
		case c < 0x20:
			escape[c] = `\u00` + string(hexDigits[c>>4]) + string(hexDigits[c&0xf])
		default:
			plain[c] = true
		}
	}
	return plain, escape
}()

// appendJSONString appends s as the contents of a JSON string (without the
// quotes), as much of it as fits in dst's capacity: dst never grows, so a
// session's buffer bounds its memory however large an event. It cuts only
// between characters and returns how many bytes of s it took. Bytes that
// are not UTF-8 become U+FFFD, as asciinema's own recorder does: a JSON
// string can only hold text.
//
// Terminal output is mostly runs of plain text: they are skipped eight
// bytes at a time and copied whole.
func appendJSONString(dst, s []byte) ([]byte, int) {
	start, i := 0, 0
	for {
		for i+8 <= len(s) && plain8(binary.LittleEndian.Uint64(s[i:])) {
			i += 8
		}
		for i < len(s) && jsonPlain[s[i]] {
			i++
		}
		if i == len(s) {
			return appendRun(dst, s, start, i)
		}
		var esc string
		if c := s[i]; c < utf8.RuneSelf {
			esc = jsonEscape[c]
		} else if r, n := utf8.DecodeRune(s[i:]); r != utf8.RuneError || n != 1 {
			i += n // a character, part of the run
			continue
		} else {
			esc = `\ufffd`
		}
		if len(dst)+i-start+len(esc) > cap(dst) {
			return appendRun(dst, s, start, i)
		}
		dst = append(dst, s[start:i]...)
		dst = append(dst, esc...)
		i++
		start = i
	}
}

// appendRun appends as much of the plain run s[start:end] as fits in dst,
// cutting it between characters, and returns how far into s it got.
func appendRun(dst, s []byte, start, end int) ([]byte, int) {
	n := end - start
	if room := cap(dst) - len(dst); n > room {
		n = room
		for n > 0 && !utf8.RuneStart(s[start+n]) {
			n--
		}
	}
	return append(dst, s[start:start+n]...), start + n
}

// plain8 says whether all eight bytes of x are plain ASCII, testing them
// at once: none is at or above 0x80, below 0x20, a quote or a backslash.
// Each term sets a byte's top bit for a byte that matches (and may set it
// for bytes above the first match, which does not matter here: it is
// nonzero exactly when some byte matches).
func plain8(x uint64) bool {
	const ones, tops = 0x0101010101010101, 0x8080808080808080
	control := (x - 0x20*ones) &^ x
	q := x ^ '"'*ones
	quote := (q - ones) &^ q
	b := x ^ '\\'*ones
	backslash := (b - ones) &^ b
	return (x|control|quote|backslash)&tops == 0
}

// incompleteTail is how many bytes at the end of s begin a UTF-8 sequence
// that the next piece of the same stream may complete (at most 3).
func incompleteTail(s []byte) int {
	for n := 1; n <= 3 && n <= len(s); n++ {
		c := s[len(s)-n]
		if c < utf8.RuneSelf {
			return 0
		}
		if utf8.RuneStart(c) {
			if utf8.FullRune(s[len(s)-n:]) {
				return 0
			}
			return n
		}
	}
	return 0
}
