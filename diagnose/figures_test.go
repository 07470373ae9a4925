package diagnose_test

import (
	"encoding/json"
	"strings"
	"testing"

	. "github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/internal/findingtest"
)

// passTest and failTest are one direction's segment test at a size.
func passTest(up bool, size int) SegmentTest {
	t := SegmentTest{Up: Untested, Down: Untested, Outcome: Completed}
	if up {
		t.UpSize, t.Up = size, Passed
	} else {
		t.DownSize, t.Down = size, Passed
	}
	return t
}

func failTest(up bool, size int) SegmentTest {
	t := passTest(up, size)
	if up {
		t.Up, t.Outcome = Failed, StalledClientHello
	} else {
		t.Down, t.Outcome = Failed, StalledServerFlight
	}
	return t
}

// TestFindingsCiteTheirFigures builds every kind of finding, the ones the
// analyzer's captures give included (a wide bracket, a direction nothing
// large was sent in, handshakes a capture cut short, resets by either
// side), and checks each sentence against its evidence: every number it
// cites is one of its figures, and no zero is cited as a size (the
// defect: "this host's large packets arrive (0 bytes passed)").
func TestFindingsCiteTheirFigures(t *testing.T) {
	cases := map[string]Evidence{
		"narrow downstream": {Family: 4, Connected: true, LocalMTU: 1500, FlightBytes: 3314,
			Segments: []SegmentTest{passTest(true, 1500), passTest(false, 1400), failTest(false, 1500)}},
		"narrow upstream": {Family: 4, Connected: true, Segments: []SegmentTest{passTest(true, 1400), failTest(true, 1500), passTest(false, 1500)}},
		"both":            {Family: 6, Connected: true, Segments: []SegmentTest{passTest(true, 1280), failTest(true, 1500), passTest(false, 1280), failTest(false, 1500)}},
		"wide from one capture, other way untested": {Family: 4, Connected: true, Captured: true, FlightBytes: 3314,
			Segments: []SegmentTest{passTest(false, 630), failTest(false, 1500)}},
		"wide, packets in the bracket": {Family: 4, Connected: true, Captured: true, SentInBracket: 3,
			Segments: []SegmentTest{passTest(false, 630), failTest(false, 1500), passTest(true, 569)}},
		"wide, probe": {Family: 4, Connected: true, Segments: []SegmentTest{passTest(true, 1500), passTest(false, 576), failTest(false, 1500)}},
		"downstream tested low": {Family: 4, Connected: true, Segments: []SegmentTest{passTest(true, 1500),
			{DownSize: 600, Down: Passed, Up: Untested, Outcome: Completed}, {DownSize: 1500, Down: Untested, Up: Untested, Outcome: Completed}}},
		"downstream tested low with a flight": {Family: 4, Connected: true, FlightBytes: 900, Segments: []SegmentTest{passTest(true, 1500),
			{DownSize: 600, Down: Passed, Up: Untested, Outcome: Completed}, {DownSize: 1500, Down: Untested, Up: Untested, Outcome: Completed}}},
		"flight never full":   {Family: 4, Connected: true, FlightBytes: 1200, Segments: []SegmentTest{passTest(true, 1500)}},
		"reset by the client": {Family: 4, Connected: true, Segments: []SegmentTest{{DownSize: 800, Outcome: Reset, Detail: "the client reset (RST) the connection"}}},
		"reset, no detail":    {Family: 4, Connected: true, Segments: []SegmentTest{{DownSize: 800, Outcome: Reset}}},
		"cut short":           {Family: 4, Connected: true, Segments: []SegmentTest{{DownSize: 800, Outcome: Timeout, Detail: "the observation ended before the handshake did"}}},
		"alert":               {Family: 4, Connected: true, Segments: []SegmentTest{{DownSize: 800, Outcome: Alert, Detail: "server: handshake_failure"}}},
		"not tls":             {Family: 4, Connected: true, Segments: []SegmentTest{{DownSize: 800, Outcome: NotTLS, Detail: `server sent "220 mail"`}}},
		"server flight lost": {Family: 4, Connected: true, Segments: []SegmentTest{{DownSize: 800, Outcome: StalledServerFlight,
			Detail: "0 of the server's 1428 bytes arrived"}}},
		"server flight unacknowledged, captured": {Family: 4, Connected: true, Captured: true, Segments: []SegmentTest{{DownSize: 800, Outcome: StalledServerFlight,
			Detail: "0 of the server's 3314 bytes arrived"}}},
		"hello lost":               {Family: 4, Connected: true, Segments: []SegmentTest{{UpSize: 600, Outcome: StalledClientHello}}},
		"no hello":                 {Family: 4, Connected: true, Segments: []SegmentTest{{Outcome: NoClientHello}}},
		"unreachable":              {Family: 4, ConnectError: "connection refused"},
		"pmtud by icmp":            {Family: 4, Connected: true, LocalMTU: 1500, ICMPSignals: []ICMPSignal{{From: "192.0.2.1", MTU: 1400}}, Segments: []SegmentTest{passTest(true, 1400), passTest(false, 1400)}},
		"pmtud by kernel":          {Family: 4, Connected: true, LocalMTU: 1500, KernelPMTU: 1400, Segments: []SegmentTest{passTest(true, 1400), passTest(false, 1400)}},
		"resent smaller, captured": {Family: 4, Connected: true, Captured: true, LocalMTU: 1500, KernelPMTU: 1400, Segments: []SegmentTest{passTest(true, 1400), passTest(false, 1400)}},
		"mss clamped": {Family: 4, Connected: true, LocalMTU: 1500, OfferedMSS: 1460, SettledMSS: 1360,
			Segments: []SegmentTest{passTest(true, 1400), passTest(false, 1400)}},
		"hello split": {Family: 4, Connected: true, Segments: []SegmentTest{passTest(true, 1400), passTest(false, 1400)},
			Hellos: []HelloTest{{HelloBytes: 500, PacketSize: 600, Segments: 1, Outcome: Completed}, {HelloBytes: 1500, PacketSize: 600, Segments: 3, Outcome: Reset}}},
		"hello band": {Family: 4, Connected: true, Segments: []SegmentTest{passTest(true, 1400), passTest(false, 1400)},
			Hellos: []HelloTest{{HelloBytes: 200, PacketSize: 600, Outcome: Completed}, {HelloBytes: 300, PacketSize: 600, Outcome: Reset}, {HelloBytes: 600, PacketSize: 600, Outcome: Completed}}},
		"fragments": {Family: 4, Connected: true, LocalMTU: 1500, Segments: []SegmentTest{passTest(true, 1500), passTest(false, 1500)},
			Datagrams: []DatagramTest{{Method: MethodUDP, Size: 1400, Result: Passed}, {Method: MethodUDP, Size: 3000, Fragmented: true, Result: Failed, Proves: Upstream},
				{Method: MethodUDP, Size: 2000, DF: true, Result: Failed, Answer: AnswerNone}}},
		"intercepted": {Family: 4, Connected: true, Segments: []SegmentTest{passTest(true, 1500), passTest(false, 1500)},
			Server: &ServerView{HelloBytes: 517, SentHelloSize: 1507, HelloSHA256: "a", SentSHA256: "b"}},
		"incomplete": {Family: 4, Connected: true, Incomplete: true, Segments: []SegmentTest{passTest(true, 1500), passTest(false, 1500)}},
		"skipped":    {Family: 4, Connected: true, Skipped: []string{"udp: not supported"}, Segments: []SegmentTest{passTest(true, 1500), passTest(false, 1500)}},
	}
	passive := map[string]PassiveEvidence{
		"up": {Family: 4, Outcomes: map[Outcome]int{StalledClientHello: 12}, StalledUp: 12, Significant: true,
			UpDelivered: 1380, UpLost: 1500, DownDelivered: 1500, PQHellos: 12, HelloBytes: 1507},
		"down, nothing seen through": {Family: 4, Outcomes: map[Outcome]int{StalledServerFlight: 12}, StalledDown: 12, Significant: true, FlightBytes: 3314},
		"wide": {Family: 4, Outcomes: map[Outcome]int{StalledServerFlight: 20}, StalledDown: 20, Significant: true,
			DownDelivered: 530, DownLost: 1500, FlightBytes: 3314},
		"split":    {Family: 4, Outcomes: map[Outcome]int{Reset: 8, Completed: 20}, SplitFailed: 8, SingleCompleted: 20},
		"refused":  {Family: 4, Outcomes: map[Outcome]int{Alert: 9}},
		"pmtud":    {Family: 4, Outcomes: map[Outcome]int{Completed: 9}, TooBig: 3, TooBigMTU: 1400},
		"isolated": {Family: 4, Outcomes: map[Outcome]int{StalledServerFlight: 2, Completed: 300}, StalledDown: 2, DownDelivered: 1500},
	}
	check := func(name string, d Diagnosis) {
		if len(d.Findings) == 0 && d.Verdict != VerdictOK {
			t.Errorf("%s: verdict %s without a finding", name, d.Verdict)
		}
		for _, f := range d.Findings {
			for _, p := range findingtest.Problems(f) {
				t.Errorf("%s: %s", name, p)
			}
		}
	}
	for name, ev := range cases {
		check(name, Diagnose(ev))
	}
	for name, p := range passive {
		check("passive "+name, Passive(p))
	}
}

// TestDiagnoseWideBracket: a capture that saw a 630-byte tail get through
// and 1500-byte packets lost, and sent nothing in between, brackets the
// path MTU; the verdict stands, but no sentence says packets above 630
// bytes vanish, and the fixes name no size (the floor is no MTU).
func TestDiagnoseWideBracket(t *testing.T) {
	ev := Evidence{Family: 4, Connected: true, Captured: true, FlightBytes: 3314,
		Segments: []SegmentTest{passTest(false, 630), failTest(false, 1500)}}
	d := Diagnose(ev)
	lower, upper, wide := d.Bracket()
	if d.Verdict != VerdictBlackhole || d.Direction != Downstream || lower != 630 || upper != 1499 || !wide {
		t.Fatalf("got %s %s bracket %d-%d wide %v", d.Verdict, d.Direction, lower, upper, wide)
	}
	text := ""
	for _, f := range d.Findings {
		text += f.Code + ": " + f.Detail + "\n"
	}
	for _, f := range d.Fixes {
		text += f.Code + ": " + f.Title + "\n"
		for _, c := range f.Commands {
			text += "  " + c + "\n"
		}
	}
	for _, want := range []string{"nothing between 631 and 1499 bytes was sent", "between 630 and 1499 bytes", "maxseg size set rt mtu", "--clamp-mss-to-pmtu"} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in\n%s", want, text)
		}
	}
	for _, bad := range []string{"larger than 630", "590", "mtu 630", "tunnel_mtu"} {
		if strings.Contains(text, bad) {
			t.Errorf("%q in\n%s", bad, text)
		}
	}
	ev.SentInBracket = 2
	d = Diagnose(ev)
	if f := findingOf(d, CodeBracket); f == nil || !strings.Contains(f.Detail, "the 2 packets sent between 631 and 1499 bytes say nothing of the size") {
		t.Errorf("packets in the bracket: %+v", d.Findings)
	}
	// A narrow bracket keeps its numbers.
	ev.Segments[0].DownSize = 1400
	d = Diagnose(ev)
	if _, _, wide := d.Bracket(); wide || !strings.Contains(d.Fixes[0].Title, "Clamp the TCP MSS to 1360") {
		t.Errorf("narrow: wide %v, fixes %+v", wide, d.Fixes)
	}
}

func findingOf(d Diagnosis, code string) *Finding {
	for i := range d.Findings {
		if d.Findings[i].Code == code {
			return &d.Findings[i]
		}
	}
	return nil
}

// TestCapturedFailureOverCutShort: from captures, a reset by the server
// speaks before a handshake the capture cut short, whichever comes first
// or is smaller; without Captured (the probe), the smallest test decides
// as before.
func TestCapturedFailureOverCutShort(t *testing.T) {
	tests := []SegmentTest{{DownSize: 0, Outcome: Timeout, Detail: "the observation ended before the handshake did"},
		{DownSize: 600, Outcome: Reset, Detail: "the server reset (RST) the connection"}}
	d := Diagnose(Evidence{Family: 4, Connected: true, Captured: true, Segments: tests})
	if d.Verdict != VerdictTLSFailed || !strings.Contains(d.Findings[0].Detail, "the server reset (RST)") {
		t.Errorf("captured: %s %+v", d.Verdict, d.Findings)
	}
	d = Diagnose(Evidence{Family: 4, Connected: true, Segments: tests})
	if d.Verdict != VerdictInconclusive {
		t.Errorf("probe: %s %+v", d.Verdict, d.Findings)
	}
}

// TestFiguresReadBackFromJSON: the check holds for findings read back
// from a command's JSON (numbers as float64, lists as []any).
func TestFiguresReadBackFromJSON(t *testing.T) {
	d := Diagnose(Evidence{Family: 4, Connected: true, LocalMTU: 1500, ICMPSignals: []ICMPSignal{{From: "198.51.100.1", MTU: 1400}},
		Segments: []SegmentTest{passTest(true, 1400), passTest(false, 1400)}})
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var back Diagnosis
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Findings) == 0 {
		t.Fatal("no findings")
	}
	for _, f := range back.Findings {
		for _, p := range findingtest.Problems(f) {
			t.Error(p)
		}
	}
}

// TestCapturedFlightUnacknowledged: a capture saw the server send its
// flight, never acknowledged, in every handshake: the server did answer,
// so this is no tls_failed ("the server is not completing TLS
// handshakes"), and no size is to blame either.
func TestCapturedFlightUnacknowledged(t *testing.T) {
	ev := Evidence{Family: 4, Connected: true, Captured: true, Segments: []SegmentTest{{DownSize: 0, Outcome: StalledServerFlight,
		Detail: "0 of the server's 3314 bytes arrived"}}}
	d := Diagnose(ev)
	if d.Verdict != VerdictInconclusive || strings.Contains(d.Findings[0].Detail, "not completing") {
		t.Errorf("captured: %s %+v", d.Verdict, d.Findings)
	}
	ev.Captured = false
	if d := Diagnose(ev); d.Verdict != VerdictTLSFailed {
		t.Errorf("probe: %s %+v", d.Verdict, d.Findings)
	}
}
