package diagnose_test

import (
	"testing"

	. "github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/internal/findingtest"
)

// TestVariantFindingsCiteTheirFigures: every finding the ClientHello
// variants make cites only figures its evidence holds (code points and
// sizes included).
func TestVariantFindingsCiteTheirFigures(t *testing.T) {
	ok := []SegmentTest{passTest(true, 1500), passTest(false, 1500)}
	attempt := func(name string, round int, o Outcome) VariantTest {
		v := VariantTest{Name: name, Attempt: round, HelloBytes: 600, Outcome: o}
		switch name {
		case VariantLengthWindow:
			v.HelloBytes = 400
		case VariantPausedSplit:
			v.PauseMS = 1000
		case VariantPQKeyShare, VariantClassicLarge:
			v.HelloBytes = 1468
		}
		if o == Reset {
			v.ResetBy = ResetByPath
		}
		if o == Alert {
			v.Alert = "handshake_failure"
		}
		return v
	}
	// set makes two rounds: the named variants fail with their outcome,
	// every other passes.
	set := func(fail map[string]Outcome) []VariantTest {
		var out []VariantTest
		for round := 1; round <= 2; round++ {
			for _, n := range []string{VariantReference, VariantNoSNI, VariantMLDSA, VariantPQOffered, VariantLengthWindow,
				VariantTwoRecords, VariantTwoSegments, VariantPausedSplit, VariantClassicLarge, VariantPQKeyShare} {
				o, bad := fail[n]
				if !bad {
					o = Completed
				}
				out = append(out, attempt(n, round, o))
			}
		}
		return out
	}
	cases := map[string][]VariantTest{
		"pq":          set(map[string]Outcome{VariantPQKeyShare: Reset}),
		"pq offered":  set(map[string]Outcome{VariantPQKeyShare: Reset, VariantPQOffered: Reset}),
		"pq by size":  set(map[string]Outcome{VariantPQKeyShare: StalledClientHello, VariantClassicLarge: StalledClientHello}),
		"mldsa":       set(map[string]Outcome{VariantMLDSA: Alert}),
		"length":      set(map[string]Outcome{VariantLengthWindow: StalledClientHello}),
		"split":       set(map[string]Outcome{VariantTwoSegments: StalledClientHello, VariantPausedSplit: StalledClientHello, VariantTwoRecords: Reset}),
		"paused":      set(map[string]Outcome{VariantPausedSplit: StalledClientHello}),
		"sni":         set(map[string]Outcome{VariantReference: Reset}),
		"sni needed":  set(map[string]Outcome{VariantNoSNI: Alert}),
		"no ref":      set(map[string]Outcome{VariantReference: Timeout, VariantNoSNI: Timeout}),
		"unsettled":   append(set(nil), attempt(VariantMLDSA, 3, Reset)),
		"undecided":   append(set(nil)[:10], attempt(VariantMLDSA, 2, Reset), attempt(VariantReference, 2, Timeout)),
		"everything":  set(map[string]Outcome{VariantPQKeyShare: Reset, VariantMLDSA: Reset, VariantLengthWindow: Timeout, VariantTwoSegments: Timeout}),
		"no variants": nil,
	}
	for name, vs := range cases {
		ev := Evidence{Family: 4, LocalMTU: 1500, Connected: true, Segments: ok, Variants: vs}
		d := Diagnose(ev)
		if len(d.Findings) == 0 && vs != nil {
			t.Errorf("%s: no finding", name)
		}
		for _, f := range d.Findings {
			for _, p := range findingtest.Problems(f) {
				t.Errorf("%s: %s", name, p)
			}
		}
	}
}
