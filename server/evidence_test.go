package server

import (
	"testing"

	"github.com/mtuscope/mtuscope/api"
	"github.com/mtuscope/mtuscope/diagnose"
)

// conn builds a snapshot of a rung connection.
func tlsConn(session string, helloRec, helloGot int, done bool, flight int64, ti TCPInfo) snapshot {
	// helloRec is the hello's record size, helloGot how many of its
	// message bytes arrived.
	s := snapshot{Kind: kindRung, SYNMSS: 1460, Session: session, HelloGot: helloGot,
		HandshakeDone: done, FlightBytes: flight, Info: ti}
	if helloGot > 0 {
		s.HelloRecords = 5 + helloGot
	}
	if helloGot >= 4 {
		s.HelloExpected = helloRec - 5
	}
	if helloGot >= helloRec-5 && helloRec > 0 {
		s.HelloHash = "h"
	}
	return s
}

// helloLost is a rung connection whose hello's head was lost: its tail
// arrived out of order, nothing in order.
func helloLost(session string, ti TCPInfo) snapshot {
	s := tlsConn(session, 1800, 0, false, 0, ti)
	s.Info.RcvOOOPack = 1
	return s
}

func probeConn(written int, acked int64, pmtu int) snapshot {
	return snapshot{Kind: kindDown, SYNMSS: 1460, DownWritten: written,
		Info: TCPInfo{Valid: true, BytesAcked: acked, PMTU: pmtu, Timestamps: true}}
}

func TestJoinRung(t *testing.T) {
	ts := TCPInfo{Valid: true, Timestamps: true, PMTU: 1500}
	const sid = "session"
	cases := []struct {
		name       string
		mss        int
		br         api.BrowserRung
		tls, down  []snapshot
		up, dn     diagnose.Result
		outcome    diagnose.Outcome
		upSz, dnSz int
	}{
		{"all passed", 1460, api.BrowserRung{Hello: api.StepOK, Down: api.StepOK, Up: api.StepOK},
			[]snapshot{tlsConn(sid, 1800, 1795, true, 4500, ts)}, []snapshot{probeConn(1448, 1449, 1500)},
			diagnose.Passed, diagnose.Passed, diagnose.Completed, 1500, 1500},
		{"hello lost upstream, probe lost downstream (S2)", 1400, api.BrowserRung{Hello: api.StepFail},
			[]snapshot{helloLost("", ts)}, []snapshot{probeConn(1388, 1, 1500)},
			diagnose.Failed, diagnose.Failed, diagnose.StalledClientHello, 1440, 1440},
		{"hello lost, probe passed (S7)", 1400, api.BrowserRung{Hello: api.StepFail},
			[]snapshot{helloLost("", ts)}, []snapshot{probeConn(1388, 1389, 1500)},
			diagnose.Failed, diagnose.Passed, diagnose.StalledClientHello, 1440, 1440},
		{"connected, nothing arrived: a busy browser or a preconnect, not the path", 1348, api.BrowserRung{Hello: api.StepFail},
			[]snapshot{tlsConn("", 0, 0, false, 0, ts), tlsConn(sid, 0, 0, false, 0, ts)}, []snapshot{probeConn(1336, 1337, 1500)},
			diagnose.Untested, diagnose.Passed, diagnose.NoClientHello, 1388, 1388},
		{"flight lost (S8)", 1400, api.BrowserRung{Hello: api.StepFail},
			[]snapshot{tlsConn("", 1800, 1795, false, 4500, ts)}, nil,
			diagnose.Passed, diagnose.Failed, diagnose.StalledServerFlight, 1440, 1440},
		{"flight acknowledged whole, handshake not finished: a slow browser, not a loss", 1400, api.BrowserRung{Hello: api.StepFail},
			[]snapshot{tlsConn("", 1800, 1795, false, 4500, TCPInfo{Valid: true, Timestamps: true, PMTU: 1500, BytesAcked: 4500})}, nil,
			diagnose.Passed, diagnose.Passed, diagnose.Timeout, 1440, 1440},
		{"flight acknowledged in part (S8)", 1400, api.BrowserRung{Hello: api.StepFail},
			[]snapshot{tlsConn("", 1800, 1795, false, 4500, TCPInfo{Valid: true, Timestamps: true, PMTU: 1500, BytesAcked: 1348})}, nil,
			diagnose.Passed, diagnose.Failed, diagnose.StalledServerFlight, 1440, 1440},
		{"small flight, download lost (S8, ECDSA)", 1400, api.BrowserRung{Hello: api.StepOK, Down: api.StepFail, Up: api.StepOK},
			[]snapshot{tlsConn(sid, 1800, 1795, true, 900, ts)}, nil,
			diagnose.Passed, diagnose.Failed, diagnose.Completed, 1440, 1440},
		{"ICMP works: smaller sizes observed (S3)", 1460, api.BrowserRung{Hello: api.StepOK, Down: api.StepOK, Up: api.StepOK},
			[]snapshot{tlsConn(sid, 1800, 1795, true, 4500, TCPInfo{Valid: true, Timestamps: true, PMTU: 1400, RcvMSS: 1348, BytesReceived: 1800})},
			[]snapshot{probeConn(1448, 1449, 1400)},
			diagnose.Passed, diagnose.Passed, diagnose.Completed, 1400, 1400},
		{"a request smaller than a segment says nothing of the path MTU", 1460, api.BrowserRung{Hello: api.StepOK, Down: api.StepOK, Up: api.StepOK},
			[]snapshot{tlsConn(sid, 1800, 1795, true, 4500, TCPInfo{Valid: true, Timestamps: true, RcvMSS: 572, BytesReceived: 600})}, nil,
			diagnose.Passed, diagnose.Passed, diagnose.Completed, 1500, 1500},
		{"client offers less than the rung", 1460, api.BrowserRung{Hello: api.StepOK, Down: api.StepOK, Up: api.StepOK},
			[]snapshot{func() snapshot { s := tlsConn(sid, 1800, 1795, true, 4500, ts); s.SYNMSS = 1360; return s }()}, nil,
			diagnose.Passed, diagnose.Passed, diagnose.Completed, 1400, 1400},
		{"no connection seen", 1460, api.BrowserRung{Hello: api.StepFail}, nil, nil,
			diagnose.Untested, diagnose.Untested, diagnose.Timeout, 1500, 1500},
		{"a pass beats a loss at the same size (random loss)", 1460, api.BrowserRung{Hello: api.StepOK, Down: api.StepFail, Up: api.StepOK},
			[]snapshot{tlsConn(sid, 1800, 1795, true, 4500, ts)}, []snapshot{probeConn(1448, 1449, 1500)},
			diagnose.Passed, diagnose.Passed, diagnose.Completed, 1500, 1500},
		{"another session's completed connection is not preferred", 1460, api.BrowserRung{Hello: api.StepFail},
			[]snapshot{helloLost("", ts), helloLost(sid, ts)}, nil,
			diagnose.Failed, diagnose.Untested, diagnose.StalledClientHello, 1500, 1500},
	}
	for _, c := range cases {
		c.br.MSS, c.br.Family = c.mss, 4
		for i := range c.tls {
			c.tls[i].MSS = c.mss
		}
		r := joinRung(4, c.br, sid, false, c.tls, c.down)
		got := r.Test
		if got.Up != c.up || got.Down != c.dn || got.Outcome != c.outcome || got.UpSize != c.upSz || got.DownSize != c.dnSz {
			t.Errorf("%s: got up %s/%d down %s/%d outcome %s; want up %s/%d down %s/%d outcome %s",
				c.name, got.Up, got.UpSize, got.Down, got.DownSize, got.Outcome, c.up, c.upSz, c.dn, c.dnSz, c.outcome)
		}
	}
}

// TestFamilyEvidenceVerdicts feeds whole ladders through the join and the
// diagnosis: the same verdicts as the testbed scenarios.
func TestFamilyEvidenceVerdicts(t *testing.T) {
	ts := TCPInfo{Valid: true, Timestamps: true, PMTU: 1500}
	ladder := func(limitUp, limitDown int) []RungResult {
		var out []RungResult
		for mss := 1220; mss <= 1460; mss += 8 {
			size := mss + 40
			br := api.BrowserRung{MSS: mss, Family: 4, Hello: api.StepOK, Down: api.StepOK, Up: api.StepOK}
			tc := tlsConn("s", 1800, 1795, true, 4500, ts)
			pc := probeConn(mss-12, int64(mss), 1500)
			if size > limitUp {
				br = api.BrowserRung{MSS: mss, Family: 4, Hello: api.StepFail}
				tc = helloLost("", ts)
			} else if size > limitDown {
				br = api.BrowserRung{MSS: mss, Family: 4, Hello: api.StepFail}
				tc = tlsConn("", 1800, 1795, false, 4500, ts)
			}
			if size > limitDown {
				pc.Info.BytesAcked = 1
			}
			tc.MSS = mss
			out = append(out, joinRung(4, br, "s", false, []snapshot{tc}, []snapshot{pc}))
		}
		return out
	}
	all := []snapshot{{Kind: kindRung, SYNMSS: 1460, Info: ts}}
	cases := []struct {
		name      string
		up, down  int
		verdict   diagnose.Verdict
		direction diagnose.Direction
		mtu       int
	}{
		{"S1", 9000, 9000, diagnose.VerdictOK, diagnose.None, 1500},
		{"S2", 1400, 1400, diagnose.VerdictBlackhole, diagnose.Both, 1396},
		{"S7", 1400, 9000, diagnose.VerdictBlackhole, diagnose.Upstream, 1396},
		{"S8", 9000, 1400, diagnose.VerdictBlackhole, diagnose.Downstream, 1396},
	}
	for _, c := range cases {
		d := diagnose.Diagnose(familyEvidence(4, ladder(c.up, c.down), all))
		if d.Verdict != c.verdict || d.Direction != c.direction || d.PathMTU != c.mtu {
			t.Errorf("%s: %s/%s/%d, want %s/%s/%d", c.name, d.Verdict, d.Direction, d.PathMTU, c.verdict, c.direction, c.mtu)
		}
	}
}

// TestJoinRungUnnamed: what the join does with connections no request
// named, such as a colleague's browser preconnecting from the same NAT.
func TestJoinRungUnnamed(t *testing.T) {
	ts := TCPInfo{Valid: true, Timestamps: true, PMTU: 1500}
	const sid = "session"
	failed := api.BrowserRung{MSS: 1400, Hello: api.StepFail}
	// lost: the hello's head never came, its tail did (out of order).
	lost := func() snapshot { return helloLost("", ts) }
	cases := []struct {
		name      string
		tls, down []snapshot
		up, dn    diagnose.Result
		uncertain bool
	}{
		{"an unnamed completed handshake is not the page's", []snapshot{tlsConn("", 1800, 1795, true, 4500, ts), lost()},
			nil, diagnose.Failed, diagnose.Untested, false},
		{"the page's retry agrees with its first try", []snapshot{lost(), lost()},
			nil, diagnose.Failed, diagnose.Untested, false},
		{"a hello lost and a flight lost: two people", []snapshot{lost(), tlsConn("", 1800, 1795, false, 4500, ts)},
			nil, diagnose.Untested, diagnose.Untested, true},
		{"a retry that sent nothing yet says nothing", []snapshot{tlsConn("", 1800, 1795, false, 4500, ts), tlsConn("", 1800, 0, false, 0, ts)},
			nil, diagnose.Passed, diagnose.Failed, false},
		{"probes disagree", []snapshot{lost()}, []snapshot{probeConn(1388, 1389, 1500), probeConn(1388, 1, 1500)},
			diagnose.Failed, diagnose.Untested, true},
	}
	for _, c := range cases {
		r := joinRung(4, failed, sid, false, c.tls, c.down)
		if r.Test.Up != c.up || r.Test.Down != c.dn || (r.Uncertain != "") != c.uncertain {
			t.Errorf("%s: up %s down %s uncertain %q; want %s %s %v", c.name, r.Test.Up, r.Test.Down, r.Uncertain, c.up, c.dn, c.uncertain)
		}
	}
}

// TestVerdictTitles checks that the report page has a title for every
// verdict diagnose can give (the operator view's filter offers them all).
func TestVerdictTitles(t *testing.T) {
	for _, v := range diagnose.Verdicts() {
		if verdictTitles[v] == "" {
			t.Errorf("no title for verdict %s", v)
		}
	}
}

// TestJoinRungListsEachConnectionOnce: the rung in the report lists the
// connection that decided it first, and every connection once.
func TestJoinRungListsEachConnectionOnce(t *testing.T) {
	ts := TCPInfo{Valid: true, Timestamps: true, PMTU: 1500}
	named := tlsConn("session", 1800, 1795, true, 4500, ts)
	unnamed := tlsConn("", 1800, 0, false, 0, ts)
	br := api.BrowserRung{MSS: 1460, Family: 4, Hello: api.StepOK, Down: api.StepOK, Up: api.StepOK}
	for _, tc := range []struct {
		name         string
		tls          []snapshot
		listed, more int
	}{
		{"one named", []snapshot{named}, 1, 0},
		{"one unnamed, unfinished", []snapshot{unnamed}, 1, 0},
		{"named among unnamed", []snapshot{unnamed, named, unnamed}, 3, 0},
		{"more than a report keeps", []snapshot{unnamed, unnamed, named, unnamed, unnamed}, maxRungSnapshots, 5 - maxRungSnapshots},
	} {
		r := joinRung(4, br, "session", false, tc.tls, nil)
		if len(r.Server) != tc.listed || r.ServerMore != tc.more {
			t.Errorf("%s: %d connections listed and %d more, want %d and %d", tc.name, len(r.Server), r.ServerMore, tc.listed, tc.more)
		}
		if len(r.Server) > 0 && r.Server[0].Session != tc.tls[len(tc.tls)/2].Session {
			t.Errorf("%s: the first listed is not the one that decided the rung", tc.name)
		}
	}
}
