package recording

import "unicode/utf8"

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as the contents of a JSON string (without the
// quotes). Bytes that are not UTF-8 become U+FFFD, as asciinema's own
// recorder does: a JSON string can only hold text.
func appendJSONString(dst, s []byte) []byte {
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
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
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
