// Package findingtest checks that a finding's sentence cites only the
// figures its evidence holds, for the tests of diagnose and analyze.
package findingtest

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/mtuscope/mtuscope/diagnose"
)

var (
	number = regexp.MustCompile(`\d+`)
	// zeroSize is a size or count of nothing cited as if it were a
	// measurement: "0 bytes", "(0 passed", "0 B".
	zeroSize = regexp.MustCompile(`(^|[^\d.])0 (bytes|B\b|passed)`)
	// fixed are phrases whose digits are names, not figures.
	fixed = []string{"ICMPv6", "IPv4", "IPv6", "RFC 4821", "1.5-1.8 KB", "type 3 code 4", "type 2", "Go 1.24"}
)

// Problems lists what is wrong with f's sentence: a number it cites that
// none of its evidence values holds (the sentence was not built from its
// figures), or a zero cited as a size.
func Problems(f diagnose.Finding) []string {
	var out []string
	text := f.Detail
	for _, p := range fixed {
		text = strings.ReplaceAll(text, p, "")
	}
	if zeroSize.MatchString(text) {
		out = append(out, fmt.Sprintf("%s: a zero cited as a size: %q", f.Code, f.Detail))
	}
	have := map[string]bool{}
	for _, v := range f.Evidence {
		collect(v, have)
	}
	for _, n := range number.FindAllString(text, -1) {
		if !have[n] {
			out = append(out, fmt.Sprintf("%s: cites %s, which its evidence %v does not hold: %q", f.Code, n, f.Evidence, f.Detail))
		}
	}
	return out
}

// collect gathers the numbers an evidence value holds, as text.
func collect(v any, into map[string]bool) {
	switch x := v.(type) {
	case string:
		for _, n := range number.FindAllString(x, -1) {
			into[n] = true
		}
	case []int:
		for _, n := range x {
			into[fmt.Sprint(n)] = true
		}
	case map[diagnose.Outcome]int:
		for _, n := range x {
			into[fmt.Sprint(n)] = true
		}
	case []diagnose.ICMPSignal:
		for _, s := range x {
			collect(s.From, into)
			into[fmt.Sprint(s.MTU)] = true
		}
	case []any: // evidence read back from JSON
		for _, e := range x {
			collect(e, into)
		}
	case map[string]any:
		for _, e := range x {
			collect(e, into)
		}
	default:
		into[fmt.Sprint(x)] = true
	}
}
