package server

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/api"
)

var (
	joinStart = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	joinOwn   = netip.MustParseAddr("198.51.100.7")
	// joinOther is the client's address in the other family (a
	// dual-stack check), joinOwn6 one in the /64 of a session from
	// 2001:db8:1::7.
	joinOther = netip.MustParseAddr("2001:db8:100::7")
	joinOwn6  = netip.MustParseAddr("2001:db8:1::99")
)

func joinSpecAt(addr netip.Addr) joinSpec {
	return joinSpec{ID: "sess", Addr: addr, Family: familyOf(addr), SYNMSS: 1460,
		From: joinStart, To: joinStart.Add(30 * time.Second)}
}

// where says where selectConns put the one connection it was given:
// "tls 4/1400", "down 4/1400", "exact 4", or "" (not the session's).
func where(c sessionConns) string {
	var out []string
	for k, ss := range c.tls {
		for range ss {
			out = append(out, fmt.Sprintf("tls %d/%d", k.fam, k.mss))
		}
	}
	for k, ss := range c.down {
		for range ss {
			out = append(out, fmt.Sprintf("down %d/%d", k.fam, k.mss))
		}
	}
	for fam, ss := range c.exact {
		for range ss {
			out = append(out, fmt.Sprintf("exact %d", fam))
		}
	}
	all := 0
	for _, ss := range c.all {
		all += len(ss)
	}
	if all != len(out)-len(c.exact[4])-len(c.exact[6]) {
		return fmt.Sprintf("all holds %d of %v", all, out)
	}
	return strings.Join(out, ", ")
}

// TestSelectConns: which connections are a session's, one connection a case.
func TestSelectConns(t *testing.T) {
	at := func(d time.Duration) time.Time { return joinStart.Add(d) }
	conn := func(kind, session string, accepted time.Time) snapshot {
		return snapshot{Kind: kind, MSS: 1400, Session: session, Accepted: accepted}
	}
	claimed := at(5 * time.Second)
	cases := []struct {
		name    string
		session netip.Addr // the session's address; joinOwn when unset
		from    netip.Addr // the connection's
		claimed time.Time  // when the session claimed from's turn
		conn    snapshot
		want    string
	}{
		{"unnamed, own address, in the turn", joinOwn, joinOwn, time.Time{}, conn(kindRung, "", at(time.Second)), "tls 4/1400"},
		{"named, own address", joinOwn, joinOwn, time.Time{}, conn(kindRung, "sess", at(time.Second)), "tls 4/1400"},
		{"at the turn's first instant", joinOwn, joinOwn, time.Time{}, conn(kindRung, "", at(0)), "tls 4/1400"},
		{"at the turn's last instant", joinOwn, joinOwn, time.Time{}, conn(kindRung, "", at(30*time.Second)), "tls 4/1400"},
		{"before the turn", joinOwn, joinOwn, time.Time{}, conn(kindRung, "", at(-time.Millisecond)), ""},
		{"after the turn", joinOwn, joinOwn, time.Time{}, conn(kindRung, "", at(30*time.Second+time.Millisecond)), ""},
		{"named by another session", joinOwn, joinOwn, time.Time{}, conn(kindRung, "other", at(time.Second)), ""},
		{"the page's own listener", joinOwn, joinOwn, time.Time{}, conn(kindPage, "sess", at(time.Second)), ""},
		{"server-first probe", joinOwn, joinOwn, time.Time{}, conn(kindDown, "", at(time.Second)), "down 4/1400"},
		{"exact-size probe", joinOwn, joinOwn, time.Time{}, conn(kindExact, "", at(time.Second)), "exact 4"},
		{"unnamed, same /64 as the session", netip.MustParseAddr("2001:db8:1::7"), joinOwn6, time.Time{}, conn(kindRung, "", at(time.Second)), "tls 6/1400"},
		{"unnamed, other address, never claimed", joinOwn, joinOther, time.Time{}, conn(kindRung, "", at(time.Second)), ""},
		{"unnamed, other address, before the claim", joinOwn, joinOther, claimed, conn(kindRung, "", at(time.Second)), ""},
		{"unnamed, other address, after the claim", joinOwn, joinOther, claimed, conn(kindRung, "", at(6*time.Second)), "tls 6/1400"},
		{"unnamed probe, other address, after the claim", joinOwn, joinOther, claimed, conn(kindDown, "", at(6*time.Second)), "down 6/1400"},
		{"named, other address, never claimed", joinOwn, joinOther, time.Time{}, conn(kindRung, "sess", at(time.Second)), "tls 6/1400"},
		{"named by another session, other address, claimed", joinOwn, joinOther, claimed, conn(kindRung, "other", at(6*time.Second)), ""},
		{"named, other address, after the turn", joinOwn, joinOther, claimed, conn(kindRung, "sess", at(31*time.Second)), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := where(selectConns(joinSpecAt(tc.session), []addrConns{{Addr: tc.from, Claimed: tc.claimed, Conns: []snapshot{tc.conn}}}))
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestJoinFamilies: the page's results meet the session's connections.
func TestJoinFamilies(t *testing.T) {
	ok := func(fam, mss int) api.BrowserRung {
		return api.BrowserRung{MSS: mss, Family: fam, Hello: api.StepOK, Down: api.StepOK, Up: api.StepOK, Probe: api.StepOpened}
	}
	lost := func(fam, mss int) api.BrowserRung {
		return api.BrowserRung{MSS: mss, Family: fam, Hello: api.StepFail, Probe: api.StepOpened}
	}
	done := func(mss, synMSS int) snapshot {
		return snapshot{Kind: kindRung, MSS: mss, SYNMSS: synMSS, Session: "sess", HelloExpected: 1800, HelloGot: 1800,
			HelloHash: "h", HelloRecords: 1805, HandshakeDone: true, FlightBytes: 4000, Info: TCPInfo{Valid: true, BytesAcked: 4000}}
	}
	exact := snapshot{Kind: kindExact, DownWritten: 64, ExactSizes: []int{1441, 1442},
		ExactEnds: []int64{64 + 1389, 64 + 2779}, Info: TCPInfo{Valid: true, BytesAcked: 64 + 1389}}
	type fam struct {
		family int
		// rungs are "MSS up/down connections", in the report's order.
		rungs    []string
		localMTU int
		offered  int
		skipped  string // a substring of the evidence's skips, "" none
		tooSlow  bool
	}
	cases := []struct {
		name    string
		plain   bool
		results []api.BrowserRung
		conns   sessionConns
		want    []fam
	}{
		{"nothing reported: the session's family, its MTU from its SYN", false, nil, sessionConns{},
			[]fam{{4, nil, 1500, 1460, "no rung results", false}}},
		{"families in the page's order, rungs by size, each its own connections", false,
			[]api.BrowserRung{ok(6, 1440), ok(4, 1460), ok(6, 1220), ok(4, 1400)},
			sessionConns{tls: map[rungKey][]snapshot{{4, 1400}: {done(1400, 1460)}, {4, 1460}: {done(1460, 1460), done(1460, 1460)}}},
			[]fam{{6, []string{"1220 passed/passed 0", "1440 passed/passed 0"}, 0, 0, "", false},
				{4, []string{"1400 passed/passed 1", "1460 passed/passed 2"}, 1500, 1460, "", false}}},
		{"the connections' SYN says the MTU, up to the largest rung", false,
			[]api.BrowserRung{ok(4, 1400), ok(4, 1300)},
			sessionConns{tls: map[rungKey][]snapshot{{4, 1400}: {done(1400, 8960)}}, all: map[int][]snapshot{4: {done(1400, 8960)}}},
			[]fam{{4, []string{"1300 passed/passed 0", "1400 passed/passed 1"}, 1440, 8960, "", false}}},
		{"plain HTTP: the handshakes untested", true, []api.BrowserRung{ok(4, 1460)}, sessionConns{},
			[]fam{{4, []string{"1460 passed/passed 0"}, 1500, 1460, "http://", false}}},
		{"an exact-size probe adds its sizes to its family only", false,
			[]api.BrowserRung{ok(4, 1400), lost(4, 1420)},
			sessionConns{exact: map[int][]snapshot{4: {exact}, 6: {exact}}},
			[]fam{{4, []string{"1400 passed/passed 0", "1401 untested/passed 0", "1402 untested/failed 1", "1420 untested/untested 0"},
				1500, 1460, "", false}}},
		{"the smallest size given up on while its packets crossed: too slow", false,
			[]api.BrowserRung{lost(4, 1220), ok(4, 1460)},
			sessionConns{tls: map[rungKey][]snapshot{{4, 1220}: {done(1220, 1460)}}},
			[]fam{{4, []string{"1220 passed/passed 1", "1460 passed/passed 0"}, 1500, 1460, "", true}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sp := joinSpecAt(joinOwn)
			sp.Plain = tc.plain
			got := joinFamilies(sp, api.PageResult{Rungs: tc.results, RTTms: 1}, tc.conns)
			if len(got) != len(tc.want) {
				t.Fatalf("%d families, want %d", len(got), len(tc.want))
			}
			for i, w := range tc.want {
				g := got[i]
				var rungs []string
				for _, r := range g.Rungs {
					rungs = append(rungs, fmt.Sprintf("%d %s/%s %d", r.MSS, r.Test.Up, r.Test.Down, len(r.Server)))
				}
				if g.Family != w.family || !slices.Equal(rungs, w.rungs) {
					t.Errorf("family %d: IPv%d %q, want IPv%d %q", i, g.Family, rungs, w.family, w.rungs)
				}
				ev := g.Evidence
				if ev.LocalMTU != w.localMTU || ev.OfferedMSS != w.offered {
					t.Errorf("IPv%d: local MTU %d, offered MSS %d, want %d, %d", g.Family, ev.LocalMTU, ev.OfferedMSS, w.localMTU, w.offered)
				}
				skips := strings.Join(ev.Skipped, "; ")
				if (w.skipped == "") != (skips == "") || !strings.Contains(skips, w.skipped) {
					t.Errorf("IPv%d: skipped %q, want %q", g.Family, skips, w.skipped)
				}
				if (ev.TooSlow != "") != w.tooSlow {
					t.Errorf("IPv%d: too slow %q, want %v", g.Family, ev.TooSlow, w.tooSlow)
				}
				if len(ev.Segments) != len(g.Rungs) {
					t.Errorf("IPv%d: %d segment tests for %d rungs", g.Family, len(ev.Segments), len(g.Rungs))
				}
			}
		})
	}
}
