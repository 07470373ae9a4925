package server

import (
	"slices"
	"strings"
	"testing"

	"github.com/mtuscope/mtuscope/api"
	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/tlswire"
)

// chromeFeatures is what the server read of a Chromium 156 hello's first
// segment: the post-quantum key share, the ML-DSA algorithms, SNI.
var chromeFeatures = tlswire.HelloFeatures{Size: 1926, Read: 1203, PQKeyShare: tlswire.Present, PQGroup: tlswire.GroupX25519MLKEM768, PQOffered: tlswire.Present,
	MLDSA: tlswire.Unknown, SNI: tlswire.Present, ServerName: "server.mtuscope.test"}

// firstSegmentOnly is a rung connection on which the first full segment
// of a 1926-byte hello arrived (seg bytes, timestamps on) and the rest
// did not; reset says an RST the server did not send ended it.
func firstSegmentOnly(seg int, reset bool, f *tlswire.HelloFeatures) snapshot {
	s := snapshot{Kind: kindRung, SYNMSS: 1460, HelloExpected: 1926, HelloGot: seg - 5, HelloRecords: seg,
		Info: TCPInfo{Valid: true, Timestamps: true, PMTU: 1500, RcvMSS: seg, AdvMSS: seg, BytesReceived: int64(seg)}}
	if reset {
		s.Reset, s.ResetMs, s.Closed = true, 2, true
	}
	s.HelloFeatures = f
	return s
}

// pageFamily joins rungs from 1260 to 1500 bytes (IPv4), each built by
// mk, and diagnoses them as the page's report does.
func pageFamily(t *testing.T, mk func(mss int) (api.BrowserRung, []snapshot, []snapshot)) FamilyResult {
	t.Helper()
	var rungs []RungResult
	var all []snapshot
	for mss := 1220; mss <= 1460; mss += 40 {
		br, tls, down := mk(mss)
		br.MSS, br.Family = mss, 4
		rungs = append(rungs, joinRung(4, br, "sid", false, tls, down))
		all = append(all, tls...)
		all = append(all, down...)
	}
	ev := familyEvidence(4, rungs, all)
	ev.TooSlow = tooSlow(4, rungs) // as joinFamilies does
	f := familyJoin{Family: 4, Rungs: rungs, Evidence: ev}
	return f.result()
}

func TestPageHelloContent(t *testing.T) {
	reset := api.BrowserRung{Hello: api.StepFail, Down: api.StepSkipped, Up: api.StepSkipped, Probe: api.StepOpened, Millis: 290, Error: "TypeError"}
	aborted := api.BrowserRung{Hello: api.StepFail, Down: api.StepSkipped, Up: api.StepSkipped, Probe: api.StepOpened, Millis: 10000, Error: "AbortError"}
	seg := func(mss int) int { return mss - 12 }
	probe := func(mss int) []snapshot { return []snapshot{probeConn(seg(mss), int64(seg(mss))+1, 1500)} }
	cases := []struct {
		name      string
		mk        func(mss int) (api.BrowserRung, []snapshot, []snapshot)
		verdict   diagnose.Verdict
		direction diagnose.Direction
		code      string   // the first finding's
		says      []string // in the first finding
		fixes     []string // fix codes present
	}{
		{"S13: reset by the path at every size, the hello's features named",
			func(mss int) (api.BrowserRung, []snapshot, []snapshot) {
				return reset, []snapshot{firstSegmentOnly(seg(mss), true, &chromeFeatures)}, probe(mss)
			},
			diagnose.VerdictTLSFailed, diagnose.Upstream, CodeHelloResetByPath,
			[]string{"RST it did not send", "neither end", "not because of its size", "reached the server at each of them", "within 290 ms", "X25519MLKEM768 (0x11EC)", "server.mtuscope.test",
				"1926 bytes", "mtuscope probe", "7 sizes from 1260 to 1500 bytes"},
			[]string{"device_allow_pq", "operator_pq_device", "chrome_pq_policy"}},
		{"reset seen by the server while the browser had given up: it may have sent it",
			func(mss int) (api.BrowserRung, []snapshot, []snapshot) {
				return aborted, []snapshot{firstSegmentOnly(seg(mss), true, &chromeFeatures)}, probe(mss)
			},
			diagnose.VerdictInconclusive, diagnose.Unknown, CodeHelloUndecided,
			[]string{"may have sent the reset itself", "X25519MLKEM768"}, nil},
		{"a device that passes a split hello's first segment and drops the rest: never whole, no reset",
			func(mss int) (api.BrowserRung, []snapshot, []snapshot) {
				return aborted, []snapshot{firstSegmentOnly(seg(mss), false, &chromeFeatures)}, probe(mss)
			},
			diagnose.VerdictInconclusive, diagnose.Upstream, CodeHelloNeverWhole,
			[]string{"never arrived whole", "split across", "Packet size does not explain it"},
			[]string{"device_reassemble", "device_allow_pq"}},
		{"nothing of the hello arrived anywhere: a device that drops it whole, or a busy browser; nothing certain",
			func(mss int) (api.BrowserRung, []snapshot, []snapshot) {
				return aborted, []snapshot{tlsConn("", 0, 0, false, 0, TCPInfo{Valid: true, Timestamps: true})}, probe(mss)
			},
			diagnose.VerdictInconclusive, diagnose.Unknown, CodeHelloNeverArrived,
			[]string{"too busy", "nothing certain", "at every size tested (7 sizes from 1260 to 1500 bytes)"}, nil},
		{"a busy browser: the hellos arrived whole and the answers were acknowledged, the page gave up: too slow, no hello finding",
			func(mss int) (api.BrowserRung, []snapshot, []snapshot) {
				return aborted, []snapshot{tlsConn("", 1931, 1926, false, 4500,
					TCPInfo{Valid: true, Timestamps: true, BytesAcked: 4501, BytesReceived: 1931, RcvMSS: seg(mss)})}, probe(mss)
			},
			diagnose.VerdictInconclusive, diagnose.Unknown, "", nil, nil},
		{"S17: reset by the path at the sizes that cross, the hello's first packet lost above 1400",
			func(mss int) (api.BrowserRung, []snapshot, []snapshot) {
				if mss+40 > 1400 {
					return aborted, []snapshot{helloLost("", TCPInfo{Valid: true, Timestamps: true})}, []snapshot{probeConn(seg(mss), 1, 1500)}
				}
				return reset, []snapshot{firstSegmentOnly(seg(mss), true, &chromeFeatures)}, probe(mss)
			},
			diagnose.VerdictTLSFailed, diagnose.Upstream, CodeHelloResetByPath,
			[]string{"at every size up to 1380 bytes (4 sizes from 1260 to 1380 bytes)", "the server's packets reached you up to 1380 bytes; at 3 sizes from 1420 to 1500 bytes they were lost", "X25519MLKEM768", "at 3 sizes from 1420 to 1500 bytes the hello's first",
				"black hole above 1380 bytes"}, []string{"device_allow_pq"}},
		{"reset at small sizes, never whole at large ones: not one story",
			func(mss int) (api.BrowserRung, []snapshot, []snapshot) {
				if mss+40 > 1400 {
					return aborted, []snapshot{firstSegmentOnly(seg(mss), false, &chromeFeatures)}, probe(mss)
				}
				return reset, []snapshot{firstSegmentOnly(seg(mss), true, &chromeFeatures)}, probe(mss)
			},
			diagnose.VerdictInconclusive, diagnose.Unknown, CodeHelloUndecided, []string{"do not agree"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fr := pageFamily(t, c.mk)
			d := fr.Diagnosis
			if d.Verdict != c.verdict || d.Direction != c.direction {
				t.Errorf("%s/%s, want %s/%s: %+v", d.Verdict, d.Direction, c.verdict, c.direction, d.Findings)
			}
			if c.code == "" {
				for _, f := range d.Findings {
					if strings.HasPrefix(f.Code, "clienthello_") {
						t.Errorf("finding %s from connections on which nothing arrived: %s", f.Code, f.Detail)
					}
				}
				return
			}
			if len(d.Findings) == 0 || d.Findings[0].Code != c.code {
				t.Fatalf("first finding %+v, want %s", d.Findings, c.code)
			}
			for _, s := range c.says {
				if !strings.Contains(d.Findings[0].Detail, s) {
					t.Errorf("finding does not say %q: %s", s, d.Findings[0].Detail)
				}
			}
			for _, code := range c.fixes {
				if !slices.ContainsFunc(d.Fixes, func(f diagnose.Fix) bool { return f.Code == code }) {
					t.Errorf("no fix %s among %+v", code, d.Fixes)
				}
			}
			// Sizes that crossed are not lost: the upstream ladder shows them passed.
			for _, r := range fr.Rungs {
				if r.Test.Up == diagnose.Failed && r.Test.UpSize <= 1400 {
					t.Errorf("rung %d: upstream failed, though a full-size packet of its hello arrived", r.MSS)
				}
			}
		})
	}
}

// TestPageHelloContentNotOnSize: where a handshake completes (a black
// hole above some size, S2), the hellos' content is not the question.
func TestPageHelloContentNotOnSize(t *testing.T) {
	ts := TCPInfo{Valid: true, Timestamps: true, PMTU: 1500}
	fr := pageFamily(t, func(mss int) (api.BrowserRung, []snapshot, []snapshot) {
		if mss+40 <= 1400 {
			return api.BrowserRung{Hello: api.StepOK, Down: api.StepOK, Up: api.StepOK},
				[]snapshot{tlsConn("sid", 1931, 1926, true, 4500, ts)}, []snapshot{probeConn(mss-12, int64(mss-11), 1500)}
		}
		return api.BrowserRung{Hello: api.StepFail, Error: "AbortError"}, []snapshot{helloLost("", ts)}, []snapshot{probeConn(mss-12, 1, 1500)}
	})
	if fr.Diagnosis.Verdict != diagnose.VerdictBlackhole {
		t.Errorf("verdict %s, want pmtud_blackhole", fr.Diagnosis.Verdict)
	}
	for _, f := range fr.Diagnosis.Findings {
		if strings.HasPrefix(f.Code, "clienthello_") {
			t.Errorf("finding %s on a size problem: %s", f.Code, f.Detail)
		}
	}
}

// TestPageHelloContentReport: the report of a path that resets the
// browser's hellos gives each audience its fixes apart: the network team
// the device, the operator the device in front of the service, the person
// who ran the check the browser's stopgap.
func TestPageHelloContentReport(t *testing.T) {
	tmpl, err := loadTemplates()
	if err != nil {
		t.Fatal(err)
	}
	reset := api.BrowserRung{Hello: api.StepFail, Down: api.StepSkipped, Up: api.StepSkipped, Millis: 290, Error: "TypeError"}
	fr := pageFamily(t, func(mss int) (api.BrowserRung, []snapshot, []snapshot) {
		return reset, []snapshot{firstSegmentOnly(mss-12, true, &chromeFeatures)}, []snapshot{probeConn(mss-12, int64(mss-11), 1500)}
	})
	if fr.Diagnosis.PathMTU != 1500 {
		t.Errorf("path MTU %d, want 1500: packets of every size crossed both ways", fr.Diagnosis.PathMTU)
	}
	rep := &Report{ID: newID(), Source: "page", Results: []FamilyResult{fr}}
	v, err := tmpl.view(rep, "https://check.example.net")
	if err != nil {
		t.Fatal(err)
	}
	has := func(fs []fixView, code string) bool {
		return slices.ContainsFunc(fs, func(f fixView) bool { return f.Code == code })
	}
	if !has(v.NetworkFixes, "device_allow_pq") || !has(v.OperatorFixes, "operator_pq_device") || !has(v.ClientFixes, "chrome_pq_policy") ||
		has(v.OperatorFixes, "chrome_pq_policy") || has(v.ClientFixes, "go_disable_mlkem") {
		t.Errorf("fixes by audience: network %v, operator %v, you %v", v.NetworkFixes, v.OperatorFixes, v.ClientFixes)
	}
	for _, want := range []string{"verdict tls_failed, direction upstream, path MTU 1500", "reset by an RST it did not send",
		"For your network team:", "For the operator of the service", "For you, until the network is fixed", "PostQuantumKeyAgreementEnabled"} {
		if !strings.Contains(v.Text, want) {
			t.Errorf("text lacks %q:\n%s", want, v.Text)
		}
	}
	var html strings.Builder
	if err := tmpl.report.Execute(&html, v); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(html.String(), `id="client-fixes"`) {
		t.Error("the HTML report has no section for the person who ran the check")
	}
}

// TestPageHelloResetProbeUnmeasured: behind a device that resets hellos
// (S13), a size's server-first probe says nothing when the reset came
// before the client acknowledged its segment (on a busy machine the
// browser's hello can leave before the probe's segment arrives). That
// size is unmeasured downstream, not lost: the page gives no path MTU
// below the largest packet that crossed, and says which sizes the
// server's packets were measured at.
func TestPageHelloResetProbeUnmeasured(t *testing.T) {
	reset := api.BrowserRung{Hello: api.StepFail, Down: api.StepSkipped, Up: api.StepSkipped, Probe: api.StepOpened, Millis: 290, Error: "TypeError"}
	cases := []struct {
		name      string
		resetFrom int // the first MSS whose probe was reset before its segment was acknowledged
		mtu       int
		says      string
	}{
		{"top size unmeasured", 1460, 1500, "the server's packets reached you up to 1460 bytes; at 1500 bytes they were not measured"},
		{"every size measured", 0, 1500, "the server's packets of every size reached you"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fr := pageFamily(t, func(mss int) (api.BrowserRung, []snapshot, []snapshot) {
				probe := probeConn(mss-12, int64(mss-11), 1500)
				if c.resetFrom > 0 && mss >= c.resetFrom {
					probe.Info.BytesAcked = 1 // only the SYN
					probe.Reset, probe.ResetMs, probe.Closed = true, 3, true
				}
				return reset, []snapshot{firstSegmentOnly(mss-12, true, &chromeFeatures)}, []snapshot{probe}
			})
			d := fr.Diagnosis
			if d.Verdict != diagnose.VerdictTLSFailed || d.Findings[0].Code != CodeHelloResetByPath {
				t.Fatalf("%s, first finding %s: %s", d.Verdict, d.Findings[0].Code, d.Findings[0].Detail)
			}
			if d.PathMTU != c.mtu {
				t.Errorf("path MTU %d, want %d", d.PathMTU, c.mtu)
			}
			if !strings.Contains(d.Findings[0].Detail, c.says) {
				t.Errorf("the finding does not say %q: %s", c.says, d.Findings[0].Detail)
			}
			untested := slices.ContainsFunc(d.Findings, func(f diagnose.Finding) bool { return f.Code == diagnose.CodeDownUntested })
			if untested != (c.resetFrom > 0) {
				t.Errorf("finding %s present: %v, want %v: %+v", diagnose.CodeDownUntested, untested, c.resetFrom > 0, d.Findings)
			}
		})
	}
}

// TestLadderRowsCapAtClientMTU: rungs above what the client offered (an
// IPv6 client's MSS 1440 against rungs up to 1460) tested packets of its
// MTU, 1500 bytes, not 1504-1520: the ladder shows them as that size.
func TestLadderRowsCapAtClientMTU(t *testing.T) {
	fr := FamilyResult{Family: 6, Evidence: diagnose.Evidence{LocalMTU: 1500}}
	for mss := 1380; mss <= 1460; mss += 8 {
		fr.Rungs = append(fr.Rungs, RungResult{MSS: mss, Test: diagnose.SegmentTest{Up: diagnose.Passed, Down: diagnose.Passed}})
	}
	rows := ladderRows(fr)
	if last := rows[len(rows)-1]; last.Size != 1500 || len(rows) != 9 {
		t.Errorf("%d rows, the last %d bytes; want 9 (1440-1496 and 1500), the last 1500", len(rows), last.Size)
	}
}

// TestJoinRungRetriedOpensTwice: a size the page tested twice (retried)
// opened twice the connections, and Chromium opens one more for each
// request whose connection a device reset: behind S13 a retried rung saw
// four unnamed TLS connections, all the page's own. Past twice the page's
// count, another program tested the size too.
func TestJoinRungRetriedOpensTwice(t *testing.T) {
	conns := func(n int) []snapshot {
		var out []snapshot
		for range n {
			out = append(out, firstSegmentOnly(1208, true, &chromeFeatures))
		}
		return out
	}
	br := api.BrowserRung{MSS: 1220, Family: 4, Hello: api.StepFail, Error: "TypeError"}
	if r := joinRung(4, br, "sid", false, conns(4), nil); r.Uncertain == "" {
		t.Error("4 unnamed connections on a size tested once: not marked uncertain")
	}
	br.Retried = true
	if r := joinRung(4, br, "sid", false, conns(4), nil); r.Uncertain != "" {
		t.Errorf("4 unnamed connections on a size tested twice: %s", r.Uncertain)
	}
	if r := joinRung(4, br, "sid", false, conns(7), nil); r.Uncertain == "" {
		t.Error("7 unnamed connections on a size tested twice: not marked uncertain")
	}
}

// TestResetProbeSaysNothingOfSize: a server-first probe reset before its
// segment was acknowledged (the device reset the hello Chromium sent on
// it; the acknowledgement rode in the segment it dropped) neither loses
// the size nor disagrees with a probe whose segment arrived.
func TestResetProbeSaysNothingOfSize(t *testing.T) {
	reset := probeConn(1208, 0, 1500)
	reset.Reset = true
	br := api.BrowserRung{MSS: 1220, Family: 4, Hello: api.StepFail, Error: "TypeError"}
	r := joinRung(4, br, "sid", false, nil, []snapshot{probeConn(1208, 1209, 1500), reset})
	if r.Uncertain != "" || r.Test.Down != diagnose.Passed {
		t.Errorf("down %s, uncertain %q; want passed, certain", r.Test.Down, r.Uncertain)
	}
	r = joinRung(4, br, "sid", false, nil, []snapshot{reset})
	if r.Test.Down == diagnose.Failed {
		t.Error("a probe reset before its acknowledgement failed the size")
	}
}
