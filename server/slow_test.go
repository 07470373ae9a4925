package server

import (
	"strings"
	"testing"

	"github.com/mtuscope/mtuscope/api"
	"github.com/mtuscope/mtuscope/diagnose"
)

// TestTooSlowIsInconclusive: the page gave up on every size (a browser on a
// hogged CPU aborting each fetch at its 2.5 s wait), while the server saw
// each ClientHello arrive whole and its answer acknowledged. That used to
// be tls_failed, MTU 0 ("the server acknowledged the ClientHello but never
// answered"); it is inconclusive, with the retry wording. The same rounds
// with the server's answers unacknowledged (lost on the way) say nothing
// of a slow computer, and a black hole above a passing smallest size (S2)
// keeps its verdict.
func TestTooSlowIsInconclusive(t *testing.T) {
	const sid = "session"
	rungs := func(acked func(mss int) bool, pass func(mss int) bool) []RungResult {
		var out []RungResult
		for mss := 1220; mss <= 1460; mss += 8 {
			br := api.BrowserRung{MSS: mss, Family: 6, Hello: api.StepFail, Down: api.StepSkipped, Up: api.StepSkipped, Probe: api.StepOpened, Millis: 2504, Error: "AbortError"}
			ti := TCPInfo{Valid: true, Timestamps: true, PMTU: 1500, BytesReceived: 1800}
			conn := tlsConn(sid, 1800, 1795, false, 4500, ti)
			if acked(mss) {
				conn.Info.BytesAcked = 4500
			}
			if pass(mss) {
				br = api.BrowserRung{MSS: mss, Family: 6, Hello: api.StepOK, Down: api.StepOK, Up: api.StepOK, Probe: api.StepOpened, Millis: 40}
				conn = tlsConn(sid, 1800, 1795, true, 4500, ti)
			}
			out = append(out, joinRung(6, br, sid, false, []snapshot{conn}, nil))
		}
		return out
	}
	always := func(int) bool { return true }
	never := func(int) bool { return false }
	cases := []struct {
		name    string
		rungs   []RungResult
		slow    bool
		verdict diagnose.Verdict
	}{
		{"every size aborted, every answer acknowledged", rungs(always, never), true, diagnose.VerdictInconclusive},
		{"every size aborted, no answer acknowledged", rungs(never, never), false, diagnose.VerdictTLSFailed},
		{"black hole above 1352 bytes (S2)", rungs(func(m int) bool { return m < 1300 }, func(m int) bool { return m < 1300 }), false, diagnose.VerdictBlackhole},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev := familyEvidence(6, c.rungs, nil)
			ev.TooSlow = tooSlow(6, c.rungs)
			d := diagnose.Diagnose(ev)
			t.Logf("%s: %s %s %d; too slow: %q", c.name, d.Verdict, d.Direction, d.PathMTU, ev.TooSlow)
			if (ev.TooSlow != "") != c.slow || d.Verdict != c.verdict {
				t.Fatalf("too slow %v, verdict %s; want %v, %s (%+v)", ev.TooSlow != "", d.Verdict, c.slow, c.verdict, d.Findings)
			}
			if c.slow {
				if d.PathMTU != 0 || d.Direction != diagnose.Unknown || len(d.Findings) != 1 ||
					!strings.Contains(d.Findings[0].Detail, "too slow to measure; retry") || !strings.Contains(d.Findings[0].Detail, "1280 bytes") {
					t.Errorf("diagnosis %+v", d)
				}
			}
		})
	}
}
