package server

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mtuscope/mtuscope/api"
)

func TestEscapeControls(t *testing.T) {
	cases := map[string]string{
		"plain":              "plain",
		"two\nlines":         `two\nlines`,
		"cr\r\x1b[2J":        `cr\r\x1b[2J`,
		`back\slash`:         `back\slash`,
		"rtl\u202eevil":      `rtl\u202eevil`,
		"sep\u2028x":         `sep\u2028x`,
		"bad\xffutf8":        `bad\ufffdutf8`,
		"ünïcode ✓ stays":    "ünïcode ✓ stays",
		"c1\u0085next\u009b": `c1\u0085next\u009b`,
	}
	for in, want := range cases {
		if got := escapeControls(in); got != want {
			t.Errorf("escapeControls(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestScrubReport(t *testing.T) {
	rep := &Report{Target: "x\ny", Client: ClientInfo{UserAgent: "Mozilla\r\nX-Evil: 1"}}
	rep.Results = []FamilyResult{{Rungs: []RungResult{{Browser: api.BrowserRung{Error: "\x1b]0;owned\x07"}}}}}
	rep.Results[0].Evidence.Skipped = []string{"a\nb"}
	rep.Results[0].Evidence.ConnectError = "dial\u202e"
	scrubStrings(rep)
	for _, s := range []string{rep.Target, rep.Client.UserAgent, rep.Results[0].Rungs[0].Browser.Error,
		rep.Results[0].Evidence.Skipped[0], rep.Results[0].Evidence.ConnectError} {
		if needsEscape(s) || strings.ContainsAny(s, "\n\r\x1b\x07") {
			t.Errorf("not scrubbed: %q", s)
		}
	}
}

func FuzzEscapeControls(f *testing.F) {
	for _, s := range []string{"", "a\nb", "\x1b[31m", "\u202e", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := escapeControls(s)
		if needsEscape(out) {
			t.Fatalf("escapeControls(%q) = %q still holds a control", s, out)
		}
		if !utf8.ValidString(out) {
			t.Fatalf("escapeControls(%q) = %q is not UTF-8", s, out)
		}
		if escapeControls(out) != out {
			t.Fatalf("escaping %q twice changed it", s)
		}
	})
}
