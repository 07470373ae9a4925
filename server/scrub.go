package server

import (
	"fmt"
	"reflect"
	"strings"
	"unicode"
)

// escapeControls makes a submitted string safe to show in every format
// (HTML, text, JSON, a terminal): newlines, other control characters,
// line and paragraph separators and bidirectional overrides are written as
// visible escapes (\n, \x1b, \u202e; a backslash stays as it is, so that
// escaping twice changes nothing), so that no submitter can start a
// line of their own, move a terminal's cursor or reorder what is shown.
func escapeControls(s string) string {
	if !needsEscape(s) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case escapedRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func needsEscape(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || escapedRune(r) {
			return true
		}
	}
	return false
}

// escapedRune: C1 controls, U+2028/2029, bidi embeddings, overrides and
// isolates, the byte order mark, and invalid UTF-8.
func escapedRune(r rune) bool {
	return (r >= 0x80 && r <= 0x9f) || r == 0x2028 || r == 0x2029 || (r >= 0x202a && r <= 0x202e) ||
		(r >= 0x2066 && r <= 0x2069) || r == 0xfeff || r == unicode.ReplacementChar
}

// scrubStrings escapes every string reachable from v (a pointer) in place:
// a report's submitted fields, wherever in it they are.
func scrubStrings(v any) {
	scrub(reflect.ValueOf(v), 0)
}

func scrub(v reflect.Value, depth int) {
	if depth > 16 {
		return
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			scrub(v.Elem(), depth+1)
		}
	case reflect.String:
		if v.CanSet() {
			if s := v.String(); needsEscape(s) {
				v.SetString(escapeControls(s))
			}
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				scrub(v.Field(i), depth+1)
			}
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			scrub(v.Index(i), depth+1)
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			e := v.MapIndex(k)
			if e.Kind() == reflect.String && needsEscape(e.String()) {
				v.SetMapIndex(k, reflect.ValueOf(escapeControls(e.String())).Convert(e.Type()))
			} else if e.Kind() == reflect.Interface && e.Elem().Kind() == reflect.String && needsEscape(e.Elem().String()) {
				v.SetMapIndex(k, reflect.ValueOf(escapeControls(e.Elem().String())))
			}
		}
	}
}
