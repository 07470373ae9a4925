package diagnose

import "testing"

// TestClassifyHandshake is the one table of the handshake outcome rules,
// with cases from each observer: the probe's sockets, the server's
// snapshots and a packet capture.
func TestClassifyHandshake(t *testing.T) {
	conn := HandshakeFacts{Connected: true}
	hello := func(f HandshakeFacts) HandshakeFacts {
		f.Connected, f.HelloBytes, f.HelloSent, f.HelloArrived, f.HelloComplete = true, 1512, 1512, 1512, true
		return f
	}
	cases := []struct {
		name string
		f    HandshakeFacts
		want Outcome
	}{
		{"probe: flight read to its end", hello(HandshakeFacts{FlightArrived: 3900, FlightComplete: true}), Completed},
		{"capture: flight acknowledged and the client answered", hello(HandshakeFacts{FlightSent: 3900, FlightArrived: 3900, FlightComplete: true, ClosedBy: ClientSide}), Completed},
		{"serve: no connection", HandshakeFacts{}, ConnectFailed},
		{"probe: flight stopped before the deadline", hello(HandshakeFacts{FlightArrived: 1400, TimedOut: true}), StalledServerFlight},
		{"capture: flight went no further, nothing lost", hello(HandshakeFacts{Passive: true, FlightSent: 1400, FlightArrived: 1400, TimedOut: true}), Timeout},
		{"capture: flight retransmitted unacknowledged", hello(HandshakeFacts{Passive: true, FlightSent: 3900, FlightArrived: 500, FlightLost: true, TimedOut: true}), StalledServerFlight},
		{"capture: preconnect closed unused", HandshakeFacts{Connected: true, Passive: true, ClosedBy: ClientSide}, NoClientHello},
		{"serve: not TLS", HandshakeFacts{Connected: true, NotTLS: true, NotTLSDetail: `"GET / HTTP/1.1"`}, NotTLS},
		{"probe: server answered in HTTP", hello(HandshakeFacts{NotTLS: true}), NotTLS},
		{"probe: alert", hello(HandshakeFacts{Alert: true, AlertName: "handshake_failure"}), Alert},
		{"probe: run cancelled", hello(HandshakeFacts{Interrupted: true}), Timeout},
		{"probe: timeout, hello unacknowledged", HandshakeFacts{Connected: true, HelloBytes: 1512, HelloSent: 1512, HelloLost: true, TimedOut: true}, StalledClientHello},
		{"probe: timeout, hello acknowledged", hello(HandshakeFacts{TimedOut: true, FlightArrived: 578}), StalledServerFlight},
		{"probe: server reset", hello(HandshakeFacts{ClosedBy: ServerSide, CloseDetail: "the server reset the connection"}), Reset},
		{"serve: hello incomplete at the deadline", HandshakeFacts{Connected: true, HelloSent: 1, HelloLost: true, TimedOut: true}, StalledClientHello},
		{"serve: hello complete, handshake not done", hello(HandshakeFacts{TimedOut: true}), StalledServerFlight},
		{"serve: handshake not done, the whole flight acknowledged", hello(HandshakeFacts{FlightSent: 3900, FlightArrived: 3900, TimedOut: true}), Timeout},
		{"serve: handshake not done, part of the flight acknowledged", hello(HandshakeFacts{FlightSent: 3900, FlightArrived: 1448, TimedOut: true}), StalledServerFlight},
		// serve's rungFacts: the page's hello step and the server's best record.
		{"serve: the page's hello completed", HandshakeFacts{FlightComplete: true}, Completed},
		{"serve: handshake done", hello(HandshakeFacts{FlightComplete: true}), Completed},
		{"serve: sniffer stopped copying the hello", HandshakeFacts{Connected: true, HelloSent: 1, TimedOut: true}, Timeout},
		// probe's downloadFacts: crypto/tls's handshake, then an HTTP answer.
		{"download: handshake timed out", HandshakeFacts{Connected: true, HelloSent: 1, HelloArrived: 1, HelloComplete: true, TimedOut: true}, StalledServerFlight},
		{"download: handshake failed", HandshakeFacts{Connected: true, HelloSent: 1, HelloArrived: 1, HelloComplete: true, Alert: true, AlertName: "remote error: tls: handshake failure"}, Alert},
		{"download: answer filled a segment or ended", HandshakeFacts{Connected: true, HelloSent: 1, HelloArrived: 1, HelloComplete: true, FlightComplete: true}, Completed},
		{"capture: hello tail across a gap, client gives up", HandshakeFacts{Connected: true, HelloSent: 1512, HelloArrived: 0, HelloLost: true, ClosedBy: ClientSide}, StalledClientHello},
		{"capture: flight retransmitted, client gives up", hello(HandshakeFacts{FlightSent: 3474, FlightArrived: 578, FlightLost: true, ClosedBy: ClientSide}), StalledServerFlight},
		{"capture: flight retransmitted until the timeout", hello(HandshakeFacts{FlightSent: 3474, FlightLost: true, TimedOut: true}), StalledServerFlight},
		{"capture: connected, silent client", HandshakeFacts{Connected: true, TimedOut: true}, NoClientHello},
		{"capture: connected, client closes without a hello", HandshakeFacts{Connected: true, ClosedBy: ClientSide}, Reset},
		{"capture: half-sent hello, nothing lost", HandshakeFacts{Connected: true, HelloBytes: 1512, HelloSent: 700, HelloArrived: 700, TimedOut: true}, Timeout},
		{"capture: half-sent hello, client closes", HandshakeFacts{Connected: true, HelloBytes: 1512, HelloSent: 700, HelloArrived: 700, ClosedBy: ClientSide}, Reset},
		{"capture: server silent after the hello", hello(HandshakeFacts{ServerSilent: true, TimedOut: true}), Timeout},
		{"capture: client gives up on a silent server", hello(HandshakeFacts{ServerSilent: true, ClosedBy: ClientSide}), Reset},
		{"capture: server resets mid-flight", hello(HandshakeFacts{FlightSent: 1000, ClosedBy: ServerSide}), Reset},
		{"capture: ends mid-handshake", conn, Timeout},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, detail := ClassifyHandshake(c.f)
			if got != c.want {
				t.Errorf("ClassifyHandshake(%+v) = %s (%s), want %s", c.f, got, detail, c.want)
			}
			if got != Completed && detail == "" {
				t.Errorf("outcome %s without a detail", got)
			}
		})
	}
}

// TestVerdicts checks the exported list against docs/design.md's vocabulary.
func TestVerdicts(t *testing.T) {
	want := []Verdict{"ok", "pmtu_reduced", "pmtud_blackhole", "fragments_dropped", "clienthello_split_intolerant",
		"clienthello_pq_rejected", "clienthello_mldsa_rejected", "clienthello_length_rejected", "clienthello_sni_rejected",
		"tls_intercepted", "tls_failed", "tcp_unreachable", "inconclusive"}
	got := Verdicts()
	if len(got) != len(want) {
		t.Fatalf("Verdicts() = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Verdicts()[%d] = %s, want %s", i, got[i], want[i])
		}
	}
	got[0] = "changed"
	if Verdicts()[0] != VerdictOK {
		t.Error("Verdicts shares its slice with callers")
	}
}
