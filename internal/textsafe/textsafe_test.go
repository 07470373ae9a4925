package textsafe

import "testing"

func TestEscape(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"plain", "Example Networks GmbH", "Example Networks GmbH"},
		{"letters kept", "Société Générale, 日本", "Société Générale, 日本"},
		{"clear screen and title", "Evil\x1b[2J\x1b]0;pwned\x07Org", `Evil\x1b[2J\x1b]0;pwned\x07Org`},
		{"newline and tab", "a\nb\tc\r", `a\x0ab\x09c\x0d`},
		{"DEL and C1", "a\x7fb\u009bc", `a\x7fb\u009bc`},
		{"bidi override and isolate", "abc\u202egnp.exe\u2066x\u2069\u200f", `abc\u202egnp.exe\u2066x\u2069\u200f`},
		{"arabic letter mark", "a\u061cb", `a\u061cb`},
		{"backslash kept", `C:\x1b`, `C:\x1b`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Escape(tc.in)
			if got != tc.want {
				t.Errorf("Escape(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if again := Escape(got); again != got {
				t.Errorf("escaping twice changed %q to %q", got, again)
			}
		})
	}
}
