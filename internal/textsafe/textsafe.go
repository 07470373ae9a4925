// Package textsafe escapes what a terminal or a reader would act on
// instead of showing, in text that comes from datasets or the network.
package textsafe

import (
	"fmt"
	"strings"
	"unicode"
)

// Escape writes as visible escapes what a terminal would act on instead of
// showing: C0 and C1 control characters (escape sequences that move the
// cursor, set the title or clear the screen; newlines that start a line of
// their own), DEL, and the bidirectional marks, overrides and isolates
// that reorder the text around them. Everything else, including other
// non-ASCII letters, is kept, and a backslash stays as it is, so that
// escaping twice changes nothing. Data from datasets (organisation names,
// attribution) goes through it before it is printed or put in an alert.
func Escape(s string) string {
	if strings.IndexFunc(s, unsafeRune) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case !unsafeRune(r):
			b.WriteRune(r)
		case r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}

func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || r == 0x061c || r == 0x200e || r == 0x200f ||
		(r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
}
