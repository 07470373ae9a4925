package diagnose

import (
	"strings"
	"testing"
)

// path simulates what the probe would observe on a path whose IPv4 packets
// larger than upLimit (client to server) or downLimit are silently lost.
type path struct {
	up, down int
	fragOK   bool
	icmp     int // MTU routers signal, 0 for none
	clamp    int // MSS the network clamps to, 0 for none
}

func (p path) evidence() Evidence {
	ev := Evidence{Family: 4, LocalMTU: 1500, Connected: true, OfferedMSS: 1460, SettledMSS: 1460, FlightBytes: 3600}
	if p.clamp > 0 {
		ev.SettledMSS = p.clamp
	}
	if p.icmp > 0 {
		ev.KernelPMTU = p.icmp
		ev.ICMPSignals = []ICMPSignal{{From: "198.51.100.1", MTU: p.icmp}}
	}
	for _, m := range []int{1460, 1452, 1440, 1400, 1380, 1361, 1360, 1340, 1300, 1240, 1220, 536} {
		size := m + 40
		if p.clamp > 0 && m > p.clamp {
			size = p.clamp + 40
		}
		if p.icmp > 0 && size > p.icmp {
			size = p.icmp
		}
		// small hello: up trivially passes, down needs size
		small := SegmentTest{UpSize: 300, DownSize: size, Up: Passed, Down: Passed, Outcome: Completed}
		if size > p.down {
			small.Down, small.Outcome = Failed, StalledServerFlight
		}
		large := SegmentTest{UpSize: size, DownSize: size, Up: Passed, Down: Passed, Outcome: Completed}
		switch {
		case size > p.up:
			large.Up, large.Down, large.Outcome = Failed, Untested, StalledClientHello
		case size > p.down:
			large.Down, large.Outcome = Failed, StalledServerFlight
		}
		ev.Segments = append(ev.Segments, small, large)
	}
	ev.Datagrams = []DatagramTest{
		{Method: "udp", Size: 128, DF: true, Result: Passed, Answer: "port_unreachable", Proves: Upstream},
		{Method: "udp", Size: 1500, DF: true, Result: Passed, Answer: "port_unreachable", Proves: Upstream},
		{Method: "udp", Size: 2000, Fragmented: true, Result: Passed, Answer: "port_unreachable", Proves: Upstream},
	}
	if p.icmp > 0 {
		ev.Datagrams[1].Result, ev.Datagrams[1].Answer = Failed, "frag_needed"
	} else if p.up < 1500 {
		ev.Datagrams[1].Result, ev.Datagrams[1].Answer = Failed, "none"
	}
	if !p.fragOK {
		ev.Datagrams[2].Result, ev.Datagrams[2].Answer = Failed, "none"
	}
	return ev
}

func TestScenarios(t *testing.T) {
	for _, tc := range []struct {
		name     string
		p        path
		verdict  Verdict
		pmtu     int
		dir      Direction
		findings []string
		fixes    []string
	}{
		{"S1 clean", path{up: 1500, down: 1500, fragOK: true}, VerdictOK, 1500, None, nil, nil},
		{"S2 seed", path{up: 1400, down: 1400}, VerdictBlackhole, 1400, Both,
			[]string{"pmtud_blackhole", CodeFragmentsDropped, CodeUDPBlackhole},
			[]string{"clamp_mss", "allow_icmp", "tunnel_mtu", "server_mtu_probing", "shrink_server_flight", "go_disable_mlkem", "allow_fragments"}},
		{"S3 pmtud works", path{up: 1400, down: 1400, fragOK: true, icmp: 1400}, VerdictPMTUReduced, 1400, None, []string{CodePMTUDWorks}, nil},
		{"S4 clamped", path{up: 1400, down: 1400, clamp: 1360}, VerdictPMTUReduced, 1400, None,
			[]string{CodeMSSClamped, CodeUDPBlackhole, CodeFragmentsDropped}, []string{"allow_icmp", "allow_fragments"}},
		{"S5 fragments", path{up: 1500, down: 1500}, VerdictFragmentsDropped, 1500, Upstream, []string{CodeFragmentsDropped}, []string{"allow_fragments"}},
		{"S7 upstream", path{up: 1400, down: 1500, fragOK: true}, VerdictBlackhole, 1400, Upstream, []string{"pmtud_blackhole", CodeUDPBlackhole},
			[]string{"clamp_mss", "allow_icmp", "tunnel_mtu", "go_disable_mlkem"}},
		{"S8 downstream", path{up: 1500, down: 1400, fragOK: true}, VerdictBlackhole, 1400, Downstream, []string{"pmtud_blackhole"},
			[]string{"clamp_mss", "allow_icmp", "tunnel_mtu", "server_mtu_probing", "shrink_server_flight"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Diagnose(tc.p.evidence())
			if d.Verdict != tc.verdict || d.PathMTU != tc.pmtu || d.Direction != tc.dir {
				t.Fatalf("got %s %d %s, want %s %d %s\n%+v", d.Verdict, d.PathMTU, d.Direction, tc.verdict, tc.pmtu, tc.dir, d.Findings)
			}
			var codes, fixes []string
			for _, f := range d.Findings {
				codes = append(codes, f.Code)
			}
			for _, f := range d.Fixes {
				fixes = append(fixes, f.Code)
			}
			if !same(codes, tc.findings) || !same(fixes, tc.fixes) {
				t.Errorf("findings %v, want %v; fixes %v, want %v", codes, tc.findings, fixes, tc.fixes)
			}
		})
	}
}

func same(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, x := range a {
		seen[x]++
	}
	for _, x := range b {
		seen[x]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

func TestMSSInFixes(t *testing.T) {
	ev := path{up: 1260, down: 1260}.evidence() // v4 sizes, shifted to v6 below
	ev.Family = 6
	for i := range ev.Segments {
		ev.Segments[i].UpSize += 20
		ev.Segments[i].DownSize += 20
	}
	d := Diagnose(ev)
	if d.Fixes[0].Code != "clamp_mss" || d.Fixes[0].Commands[0] != "nft add rule ip6 filter forward tcp flags syn tcp option maxseg size set 1220" {
		t.Errorf("v6 clamp fix: %+v", d.Fixes[0])
	}
}

func TestLossIsNotABlackhole(t *testing.T) {
	// One rung lost to random loss, then passed on retry: no black hole.
	ev := path{up: 1500, down: 1500, fragOK: true}.evidence()
	ev.Segments = append(ev.Segments, SegmentTest{UpSize: 1500, DownSize: 1500, Up: Passed, Down: Failed, Outcome: StalledServerFlight})
	if d := Diagnose(ev); d.Verdict != VerdictOK {
		t.Errorf("verdict %s, want ok", d.Verdict)
	}
}

func TestNothingCompletes(t *testing.T) {
	for _, tc := range []struct {
		outcome Outcome
		verdict Verdict
		code    string
	}{
		{NotTLS, VerdictTLSFailed, CodeNotTLS},
		{Alert, VerdictTLSFailed, CodeServerAlert},
		{Reset, VerdictTLSFailed, CodeConnectionLost},
		{StalledServerFlight, VerdictTLSFailed, CodeServerSilent},
		{StalledClientHello, VerdictInconclusive, "inconclusive"},
	} {
		ev := Evidence{Family: 4, LocalMTU: 1500, Connected: true, Segments: []SegmentTest{
			{UpSize: 300, DownSize: 576, Up: Passed, Down: Failed, Outcome: tc.outcome, Detail: "x"},
			{UpSize: 1500, DownSize: 1500, Up: Passed, Down: Failed, Outcome: tc.outcome, Detail: "x"},
		}}
		d := Diagnose(ev)
		if d.Verdict != tc.verdict || len(d.Findings) == 0 || d.Findings[0].Code != tc.code || d.PathMTU != 0 {
			t.Errorf("%s: got %s %d %+v", tc.outcome, d.Verdict, d.PathMTU, d.Findings)
		}
		if !d.Verdict.Problem() {
			t.Errorf("%s: verdict %s is not a problem", tc.outcome, d.Verdict)
		}
	}
	d := Diagnose(Evidence{Family: 4, ConnectError: "connection refused"})
	if d.Verdict != VerdictTCPUnreachable || d.Direction != Unknown {
		t.Errorf("unreachable: %+v", d)
	}
}

func TestHelloSweep(t *testing.T) {
	base := path{up: 1500, down: 1500, fragOK: true}.evidence()
	mk := func(fail func(int) bool) []HelloTest {
		var hs []HelloTest
		for _, s := range []int{300, 600, 1000, 1250, 1512, 1750, 1800, 2500, 4000} {
			o := Completed
			if fail(s) {
				o = StalledClientHello
			}
			hs = append(hs, HelloTest{HelloBytes: s, PacketSize: 1280, Segments: (s + 1227) / 1228, Outcome: o})
		}
		return hs
	}
	ev := base
	ev.Hellos = mk(func(s int) bool { return s > 1280 })
	// The device's fix first, the Go stopgap after it.
	if d := Diagnose(ev); d.Verdict != VerdictSplitIntolerant || d.Direction != Upstream || len(d.Fixes) != 2 ||
		d.Fixes[0].Code != "device_reassemble" || d.Fixes[1].Code != "go_disable_mlkem" {
		t.Errorf("split: %+v", d)
	}
	ev.Hellos = mk(func(s int) bool { return s == 1750 || s == 1800 })
	if d := Diagnose(ev); d.Verdict != VerdictTLSFailed || !d.has(CodeHelloSizeBand) {
		t.Errorf("band: %+v", d)
	}
	ev.Hellos = mk(func(int) bool { return false })
	if d := Diagnose(ev); d.Verdict != VerdictOK {
		t.Errorf("all pass: %+v", d)
	}
}

func TestInterceptedAndIncomplete(t *testing.T) {
	ev := path{up: 1500, down: 1500, fragOK: true}.evidence()
	ev.Server = &ServerView{HelloBytes: 517, HelloSHA256: "aa", SentHelloSize: 1512, SentSHA256: "bb"}
	if d := Diagnose(ev); d.Verdict != VerdictTLSIntercepted || !d.has(string(VerdictTLSIntercepted)) {
		t.Errorf("intercepted: %+v", d)
	}
	// An interceptor that refuses large hellos: the interception is the
	// verdict, the split intolerance one more finding.
	split := ev
	for _, s := range []int{300, 1000, 1512, 1800} {
		o := Completed
		if s > 1280 {
			o = Alert
		}
		split.Hellos = append(split.Hellos, HelloTest{HelloBytes: s, PacketSize: 1280, Segments: 1 + s/1228, Outcome: o})
	}
	if d := Diagnose(split); d.Verdict != VerdictTLSIntercepted || !d.has(string(VerdictSplitIntolerant)) {
		t.Errorf("intercepted and split intolerant: %s, findings %+v", d.Verdict, d.Findings)
	}
	// A black hole still ranks first: it breaks the path whoever terminates TLS.
	hole := path{up: 1400, down: 1400, fragOK: true}.evidence()
	hole.Server = ev.Server
	if d := Diagnose(hole); d.Verdict != VerdictBlackhole || !d.has(string(VerdictTLSIntercepted)) {
		t.Errorf("black hole behind an interceptor: %s, findings %+v", d.Verdict, d.Findings)
	}
	ev.Server.HelloSHA256 = "bb"
	if d := Diagnose(ev); d.Verdict != VerdictOK {
		t.Errorf("same hello: %+v", d)
	}
	ev = path{up: 1400, down: 1400}.evidence()
	ev.Incomplete = true
	if d := Diagnose(ev); d.Verdict != VerdictInconclusive || d.PathMTU != 1400 {
		t.Errorf("incomplete: %s %d", d.Verdict, d.PathMTU)
	}
}

// TestSmallFlight: a server whose answers fill a segment only at the
// smallest rung proves downstream to that size and no further; that is no
// limit of the path and must not become the path MTU.
func TestSmallFlight(t *testing.T) {
	ev := Evidence{Family: 4, LocalMTU: 1500, Connected: true, FlightBytes: 786}
	for _, m := range []int{1460, 1400, 1300, 536} {
		down, dres := m+40, Untested
		if m == 536 {
			dres = Passed
		}
		ev.Segments = append(ev.Segments,
			SegmentTest{UpSize: 352, DownSize: down, Up: Passed, Down: dres, Outcome: Completed},
			SegmentTest{UpSize: m + 40, DownSize: down, Up: Passed, Down: dres, Outcome: Completed})
	}
	d := Diagnose(ev)
	if d.Verdict != VerdictOK || d.PathMTU != 1500 || !d.has(CodeDownUntested) {
		t.Errorf("small flight: %s %d, findings %+v", d.Verdict, d.PathMTU, d.Findings)
	}
	// The same with a real downstream loss above 576 is a black hole.
	ev.Segments[0].Down, ev.Segments[0].Outcome = Failed, StalledServerFlight
	if d := Diagnose(ev); d.Verdict != VerdictBlackhole || d.Direction != Downstream {
		t.Errorf("loss above the small flight: %s %s %d", d.Verdict, d.Direction, d.PathMTU)
	}
}

// TestFragmentDirections: the server's echo tells upstream from downstream
// fragment loss.
func TestFragmentDirections(t *testing.T) {
	for _, tc := range []struct {
		name     string
		up, down bool
		want     Direction
	}{
		{"upstream", true, false, Upstream},
		{"downstream", false, true, Downstream},
		{"both", true, true, Both},
	} {
		ev := path{up: 1500, down: 1500, fragOK: true}.evidence()
		ev.Datagrams = []DatagramTest{{Method: "udp_echo", Size: 128, DF: true, Result: Passed, Answer: "echo_reply", Proves: None}}
		if tc.up {
			ev.Datagrams = append(ev.Datagrams, DatagramTest{Method: "udp", Size: 2000, Fragmented: true, Result: Failed, Answer: "none", Proves: Upstream})
		}
		if tc.down {
			ev.Datagrams = append(ev.Datagrams, DatagramTest{Method: "udp_echo", Size: 2000, Fragmented: true, Result: Failed, Answer: "request_arrived", Proves: Downstream})
		}
		d := Diagnose(ev)
		if d.Verdict != VerdictFragmentsDropped || d.Direction != tc.want {
			t.Errorf("%s: %s %s, want fragments_dropped %s", tc.name, d.Verdict, d.Direction, tc.want)
		}
	}
}

// TestNarrowBracketIsNoPathMTU: a search that stopped before its bracket
// closed (packets of 1380 bytes pass, 1400 are lost, nothing between was
// measured) states a bracket, not its floor as the path's limit.
func TestNarrowBracketIsNoPathMTU(t *testing.T) {
	d := Diagnose(path{up: 1390, down: 1390, fragOK: true}.evidence())
	if d.Verdict != VerdictBlackhole {
		t.Fatalf("verdict %s, want %s", d.Verdict, VerdictBlackhole)
	}
	lo, hi, wide := d.Bracket()
	if lo != 1380 || hi != 1399 || wide {
		t.Errorf("Bracket() = %d, %d, %v; want 1380, 1399, false", lo, hi, wide)
	}
	var text string
	for _, f := range d.Findings {
		if f.Code == string(VerdictBlackhole) {
			text = f.Detail
			if _, ok := f.Evidence["path_mtu"]; ok {
				t.Errorf("the finding's evidence names a path MTU: %v", f.Evidence)
			}
		}
	}
	if !strings.Contains(text, "between 1380 and 1399 bytes") || strings.Contains(text, "larger than 1380") {
		t.Errorf("finding: %q; want the bracket, not its floor as the limit", text)
	}
	// Measured to the byte, the same path gets a number.
	d = Diagnose(path{up: 1400, down: 1400, fragOK: true}.evidence())
	if lo, hi, _ := d.Bracket(); lo != 1400 || hi != 1400 {
		t.Errorf("exact: Bracket() = %d, %d; want 1400, 1400", lo, hi)
	}
}
