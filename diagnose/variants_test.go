package diagnose

import (
	"slices"
	"strings"
	"testing"
)

// attempts are a variant's outcomes, one per attempt.
type attempts map[string][]VariantTest

// pass and the failures make one attempt.
var (
	pass      = VariantTest{Outcome: Completed}
	resetPath = VariantTest{Outcome: Reset, ResetBy: ResetByPath}
	resetAny  = VariantTest{Outcome: Reset}
	silence   = VariantTest{Outcome: StalledClientHello}
	timeout   = VariantTest{Outcome: Timeout}
	alert     = VariantTest{Outcome: Alert, Alert: "handshake_failure"}
)

// variants returns the evidence of every variant, each passing twice
// unless set (what probe's second round makes of a control).
func variants(set attempts) []VariantTest {
	var out []VariantTest
	for _, name := range []string{VariantReference, VariantNoSNI, VariantMLDSA, VariantPQOffered, VariantLengthWindow,
		VariantTwoRecords, VariantTwoSegments, VariantPausedSplit, VariantClassicLarge, VariantPQKeyShare} {
		as, ok := set[name]
		if !ok {
			as = []VariantTest{pass, pass}
		}
		for i, a := range as {
			a.Name, a.Attempt, a.HelloBytes = name, i+1, 600
			switch name {
			case VariantLengthWindow:
				a.HelloBytes = 400
			case VariantPausedSplit:
				a.PauseMS = 1000
			case VariantPQKeyShare, VariantClassicLarge:
				a.HelloBytes = 1468
			}
			out = append(out, a)
		}
	}
	return out
}

// splitLadder makes the ladders of a path that cannot read a split hello:
// every large (multi-segment) hello stalls upstream at every size.
func splitLadder(ev Evidence) Evidence {
	ev.Segments = slices.Clone(ev.Segments)
	for i, s := range ev.Segments {
		if s.UpSize > 300 {
			ev.Segments[i] = SegmentTest{UpSize: s.UpSize, DownSize: s.DownSize, Up: Failed, Down: Untested,
				Outcome: StalledClientHello, HelloSegments: 2}
		} else {
			ev.Segments[i].HelloSegments = 1
		}
	}
	for _, s := range []int{517, 600, 1000, 1250, 1400, 1512} {
		o := Completed
		if s > 1228 {
			o = StalledClientHello
		}
		ev.Hellos = append(ev.Hellos, HelloTest{HelloBytes: s, PacketSize: min(s, 1228) + 52, Segments: (s + 1227) / 1228, Outcome: o})
	}
	return ev
}

// TestVariantVerdicts: every cause of content alone, with a black hole,
// with each other, and the evidence that must name none.
func TestVariantVerdicts(t *testing.T) {
	clean := path{up: 1500, down: 1500, fragOK: true}.evidence()
	seed := path{up: 1400, down: 1400, fragOK: true}.evidence()
	failedBase := clean
	failedBase.Segments = []SegmentTest{{UpSize: 569, DownSize: 576, Up: Untested, Down: Untested, Outcome: Reset, Detail: "connection reset"}}
	incomplete := clean
	incomplete.Incomplete = true
	for _, tc := range []struct {
		name     string
		ev       Evidence
		set      attempts
		verdict  Verdict
		pmtu     int
		causes   []Verdict
		findings []string
		absent   []string
		fixes    []string
		text     string // in the verdict's finding
	}{
		{name: "S1 every variant completes", ev: clean, verdict: VerdictOK, pmtu: 1500},
		{name: "S13 post-quantum key share reset by the path", ev: clean,
			set:     attempts{VariantPQKeyShare: {resetPath, resetPath}, VariantClassicLarge: {pass, pass}, VariantReference: {pass, pass}},
			verdict: VerdictPQRejected, pmtu: 1500, causes: []Verdict{VerdictPQRejected}, findings: []string{"clienthello_pq_rejected"},
			fixes: []string{"device_allow_pq", "operator_pq_device", "go_disable_mlkem", "openssl_groups_no_pq", "chrome_pq_policy"},
			text:  "something on the path rejects the key share"},
		{name: "S13 group without its share fails too (a HelloRetryRequest for it)", ev: clean,
			set: attempts{VariantPQKeyShare: {resetPath, resetPath}, VariantClassicLarge: {pass, pass},
				VariantPQOffered: {{Outcome: Reset, ResetBy: ResetByPath, RetryGroup: "X25519MLKEM768"}, resetPath}},
			verdict: VerdictPQRejected, pmtu: 1500, causes: []Verdict{VerdictPQRejected}, text: "fails too"},
		{name: "group offered without share fails, the share's own test undecided", ev: clean,
			set: attempts{VariantPQOffered: {resetPath, resetPath}, VariantPQKeyShare: {resetPath, resetPath},
				VariantClassicLarge: {timeout, timeout}},
			verdict: VerdictPQRejected, pmtu: 1500, causes: []Verdict{VerdictPQRejected}, findings: []string{CodePQSizeNotContent},
			text: "even in a hello without its key share"},
		{name: "S14 ML-DSA", ev: clean, set: attempts{VariantMLDSA: {resetPath, resetPath}, VariantReference: {pass, pass}},
			verdict: VerdictMLDSARejected, pmtu: 1500, causes: []Verdict{VerdictMLDSARejected},
			fixes: []string{"device_allow_mldsa", "client_mldsa"}, text: "0x0904-0x0906"},
		{name: "ML-DSA refused by TLS alerts: the server's", ev: clean, set: attempts{VariantMLDSA: {alert, alert}, VariantReference: {pass, pass}},
			verdict: VerdictMLDSARejected, pmtu: 1500, causes: []Verdict{VerdictMLDSARejected}, text: "the server (or a TLS-inspecting device"},
		{name: "S15 split: ladder and sweep explained, no black hole", ev: splitLadder(clean),
			set: attempts{VariantTwoSegments: {silence, silence}, VariantPausedSplit: {silence}, VariantReference: {pass, pass},
				VariantPQKeyShare: {silence, silence}, VariantClassicLarge: {silence, silence}},
			verdict: VerdictSplitIntolerant, pmtu: 1500, causes: []Verdict{VerdictSplitIntolerant},
			findings: []string{CodeUpUntested, CodePQSizeNotContent}, absent: []string{"pmtud_blackhole", "clienthello_pq_rejected"},
			fixes: []string{"device_reassemble", "go_disable_mlkem"}, text: "every packet was at most 1280 bytes"},
		{name: "split only with a pause", ev: clean,
			set:     attempts{VariantPausedSplit: {silence, silence}, VariantTwoSegments: {pass, pass}, VariantReference: {pass, pass}},
			verdict: VerdictSplitIntolerant, pmtu: 1500, causes: []Verdict{VerdictSplitIntolerant}, text: "pause of 1000 ms"},
		{name: "two records in one segment", ev: clean, set: attempts{VariantTwoRecords: {resetAny, resetAny}, VariantReference: {pass, pass}},
			verdict: VerdictSplitIntolerant, pmtu: 1500, causes: []Verdict{VerdictSplitIntolerant}, text: "two TLS records"},
		{name: "S16 length window", ev: clean, set: attempts{VariantLengthWindow: {silence, silence}, VariantReference: {pass, pass}},
			verdict: VerdictLengthRejected, pmtu: 1500, causes: []Verdict{VerdictLengthRejected}, fixes: []string{"device_length_window"},
			text: "A 400-byte ClientHello"},
		{name: "S17 black hole and post-quantum device: both", ev: seed,
			set:     attempts{VariantPQKeyShare: {resetPath, resetPath}, VariantClassicLarge: {pass, pass}, VariantReference: {pass, pass}},
			verdict: VerdictBlackhole, pmtu: 1400, causes: []Verdict{VerdictBlackhole, VerdictPQRejected},
			findings: []string{"pmtud_blackhole", "clienthello_pq_rejected"}, fixes: []string{"clamp_mss", "device_allow_pq", "chrome_pq_policy"}},
		{name: "two devices: post-quantum and ML-DSA", ev: clean,
			set: attempts{VariantPQKeyShare: {resetPath, resetPath}, VariantClassicLarge: {pass, pass}, VariantReference: {pass, pass},
				VariantMLDSA: {resetPath, resetPath}},
			verdict: VerdictPQRejected, pmtu: 1500, causes: []Verdict{VerdictPQRejected, VerdictMLDSARejected}},
		{name: "names refused: the baseline failed, a hello without SNI completes", ev: failedBase,
			set:     attempts{VariantReference: {resetAny, resetAny}, VariantNoSNI: {pass, pass}},
			verdict: VerdictSNIRejected, causes: []Verdict{VerdictSNIRejected}, fixes: []string{"allow_server_name"}},
		{name: "a server that wants SNI: a finding, no cause", ev: clean,
			set: attempts{VariantNoSNI: {alert, alert}, VariantReference: {pass, pass}}, verdict: VerdictOK, pmtu: 1500,
			findings: []string{CodeSNIRequired}},
		{name: "busy machine: the reference times out, nothing named", ev: clean,
			set: attempts{VariantReference: {timeout, timeout}, VariantPQKeyShare: {timeout, timeout}, VariantMLDSA: {timeout, timeout},
				VariantClassicLarge: {pass, pass}, VariantNoSNI: {pass, timeout}},
			verdict: VerdictInconclusive, pmtu: 1500, findings: []string{CodeVariantsInconclusive}, absent: []string{"clienthello_pq_rejected", "clienthello_mldsa_rejected"}},
		{name: "everything fails, baseline too: inconclusive", ev: Evidence{Family: 4, LocalMTU: 1500, Connected: true,
			Segments: []SegmentTest{{UpSize: 569, DownSize: 576, Up: Untested, Down: Untested, Outcome: Timeout}}},
			set:     attempts{VariantReference: {timeout, timeout}, VariantNoSNI: {timeout, timeout}, VariantPQKeyShare: {timeout, timeout}},
			verdict: VerdictInconclusive, absent: []string{CodeVariantsInconclusive}},
		// Failing every attempt without the pairing a cause needs: not ok.
		{name: "a post-quantum failure once only: undecided", ev: clean,
			set:     attempts{VariantPQKeyShare: {resetPath}, VariantClassicLarge: {pass, pass}},
			verdict: VerdictInconclusive, pmtu: 1500, findings: []string{CodeVariantsUndecided},
			absent: []string{"clienthello_pq_rejected", CodeVariantsUnsettled}},
		{name: "fails then completes: unsettled, nothing named", ev: clean,
			set:     attempts{VariantPQKeyShare: {resetPath, pass}, VariantClassicLarge: {pass, pass}, VariantReference: {pass, pass}},
			verdict: VerdictOK, pmtu: 1500, findings: []string{CodeVariantsUnsettled}, absent: []string{"clienthello_pq_rejected"}},
		{name: "the control of the key share failed once: undecided", ev: clean,
			set:     attempts{VariantPQKeyShare: {resetPath, resetPath}, VariantClassicLarge: {pass, timeout}},
			verdict: VerdictInconclusive, pmtu: 1500, findings: []string{CodeVariantsUnsettled, CodeVariantsUndecided},
			absent: []string{"clienthello_pq_rejected"}},
		{name: "the control of the key share completed once only: undecided", ev: clean,
			set:     attempts{VariantPQKeyShare: {resetPath, resetPath}, VariantClassicLarge: {pass}},
			verdict: VerdictInconclusive, pmtu: 1500, findings: []string{CodeVariantsUndecided}, absent: []string{"clienthello_pq_rejected"}},
		{name: "a black hole stays the verdict beside an undecided variant", ev: seed,
			set:     attempts{VariantMLDSA: {resetPath}, VariantReference: {pass, pass}},
			verdict: VerdictBlackhole, pmtu: 1400, causes: []Verdict{VerdictBlackhole}, findings: []string{CodeVariantsUndecided}},
		{name: "run cut short: inconclusive, the proven cause still listed", ev: incomplete,
			set:     attempts{VariantPQKeyShare: {resetPath, resetPath}, VariantClassicLarge: {pass, pass}, VariantReference: {pass, pass}},
			verdict: VerdictInconclusive, pmtu: 1500, causes: []Verdict{VerdictPQRejected}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := tc.ev
			ev.Variants = variants(tc.set)
			d := Diagnose(ev)
			if d.Verdict != tc.verdict || d.PathMTU != tc.pmtu || !slices.Equal(d.Causes, tc.causes) {
				t.Errorf("got %s / %d / causes %v, want %s / %d / %v", d.Verdict, d.PathMTU, d.Causes, tc.verdict, tc.pmtu, tc.causes)
			}
			if tc.verdict != VerdictOK && tc.verdict != VerdictBlackhole && tc.verdict != VerdictInconclusive && d.Direction != Upstream {
				t.Errorf("direction %s, want upstream", d.Direction)
			}
			for _, f := range tc.findings {
				if !d.has(f) {
					t.Errorf("no finding %s", f)
				}
			}
			for _, f := range tc.absent {
				if d.has(f) {
					t.Errorf("finding %s should be absent", f)
				}
			}
			for _, code := range tc.fixes {
				if !slices.ContainsFunc(d.Fixes, func(f Fix) bool { return f.Code == code }) {
					t.Errorf("no fix %s", code)
				}
			}
			if tc.text != "" && !slices.ContainsFunc(d.Findings, func(f Finding) bool {
				return f.Code == string(tc.verdict) && strings.Contains(f.Detail, tc.text)
			}) {
				t.Errorf("the %s finding does not say %q", tc.verdict, tc.text)
			}
			seen := map[string]bool{}
			for _, f := range d.Findings {
				if seen[f.Code] {
					t.Errorf("finding %s twice", f.Code)
				}
				seen[f.Code] = true
			}
			if t.Failed() {
				for _, f := range d.Findings {
					t.Logf("  %s: %s", f.Code, f.Detail)
				}
			}
		})
	}
}

// TestVariantFixWording: the OpenSSL fix offers the group without its
// share only where that completed, and the Chrome policy says it is gone
// in Chrome 147.
func TestVariantFixWording(t *testing.T) {
	ev := path{up: 1500, down: 1500, fragOK: true}.evidence()
	ev.Variants = variants(attempts{VariantPQKeyShare: {resetPath, resetPath}, VariantClassicLarge: {pass, pass},
		VariantPQOffered: {pass, resetPath}})
	fix := func(d Diagnosis, code string) Fix {
		i := slices.IndexFunc(d.Fixes, func(f Fix) bool { return f.Code == code })
		if i < 0 {
			t.Fatalf("no fix %s", code)
		}
		return d.Fixes[i]
	}
	d := Diagnose(ev)
	if o := fix(d, "openssl_groups_no_pq"); len(o.Commands) != 1 || o.Commands[0] != "Groups = DEFAULT:-X25519MLKEM768" {
		t.Errorf("openssl fix with the group offered failing once: %+v", o)
	}
	if c := fix(d, "chrome_pq_policy"); !strings.Contains(c.Title, "removed in Chrome 147") {
		t.Errorf("chrome fix: %s", c.Title)
	}
	ev.Variants = variants(attempts{VariantPQKeyShare: {resetPath, resetPath}, VariantClassicLarge: {pass, pass},
		VariantPQOffered: {pass}})
	if o := fix(Diagnose(ev), "openssl_groups_no_pq"); len(o.Commands) != 2 || !strings.HasPrefix(o.Commands[1], "Groups = *X25519:X25519MLKEM768") {
		t.Errorf("openssl fix with the group offered passing: %+v", o)
	}
}
