// Package diagnose turns evidence about a network path into findings, one
// verdict and the fixes a network team can apply. It is pure: evidence in,
// diagnosis out, no sockets, no clock. The probe, the page, the monitor and
// the analyzer all fill the same Evidence and share this vocabulary.
package diagnose

import "github.com/mtuscope/mtuscope/packet"

// Verdict is the one-word conclusion about a path.
type Verdict string

// Verdicts, with one meaning across every mtuscope tool (see docs/design.md).
const (
	VerdictOK               Verdict = "ok"
	VerdictPMTUReduced      Verdict = "pmtu_reduced"
	VerdictBlackhole        Verdict = "pmtud_blackhole"
	VerdictFragmentsDropped Verdict = "fragments_dropped"
	VerdictSplitIntolerant  Verdict = "clienthello_split_intolerant"
	// Verdicts of content, not size: something on the path refuses
	// ClientHellos for what they carry, found by hellos that differ from a
	// passing one in one thing each (see VariantTest).
	VerdictPQRejected     Verdict = "clienthello_pq_rejected"     // the post-quantum key share X25519MLKEM768 (0x11EC)
	VerdictMLDSARejected  Verdict = "clienthello_mldsa_rejected"  // the ML-DSA signature algorithms 0x0904-0x0906
	VerdictLengthRejected Verdict = "clienthello_length_rejected" // hellos of 256-511 bytes (RFC 7685's window)
	VerdictSNIRejected    Verdict = "clienthello_sni_rejected"    // hellos naming this server; one without a name passes
	VerdictTLSIntercepted Verdict = "tls_intercepted"
	VerdictTLSFailed      Verdict = "tls_failed"
	VerdictTCPUnreachable Verdict = "tcp_unreachable"
	VerdictInconclusive   Verdict = "inconclusive"
)

// Verdicts returns every verdict, in docs/design.md's order with the
// verdicts of content after clienthello_split_intolerant (a new slice each
// call).
func Verdicts() []Verdict {
	return []Verdict{VerdictOK, VerdictPMTUReduced, VerdictBlackhole, VerdictFragmentsDropped, VerdictSplitIntolerant,
		VerdictPQRejected, VerdictMLDSARejected, VerdictLengthRejected, VerdictSNIRejected,
		VerdictTLSIntercepted, VerdictTLSFailed, VerdictTCPUnreachable, VerdictInconclusive}
}

// Problem reports whether the verdict calls for action: everything except
// ok and pmtu_reduced (a smaller path MTU that PMTUD or clamping copes with).
func (v Verdict) Problem() bool { return v != VerdictOK && v != VerdictPMTUReduced }

// Direction says which way across the path a problem lies.
type Direction string

// Directions.
const (
	Upstream   Direction = "upstream"   // client to server
	Downstream Direction = "downstream" // server to client
	Both       Direction = "both"
	None       Direction = "none"
	Unknown    Direction = "unknown"
)

// Outcome is how one TLS handshake attempt ended, seen from where it was
// observed (client, server, or a capture).
type Outcome string

// Handshake outcomes.
const (
	Completed           Outcome = "completed"             // the server's whole first flight arrived
	StalledClientHello  Outcome = "stalled_clienthello"   // the ClientHello was never wholly acknowledged
	StalledServerFlight Outcome = "stalled_server_flight" // the ClientHello arrived, the server's flight did not
	NoClientHello       Outcome = "no_clienthello"        // connected, but no ClientHello was seen
	Alert               Outcome = "alert"                 // the server answered with a TLS alert
	Reset               Outcome = "reset"                 // the connection was reset or closed early
	Timeout             Outcome = "timeout"               // nothing conclusive before the deadline
	NotTLS              Outcome = "not_tls"               // the peer answered, but not in TLS
	ConnectFailed       Outcome = "connect_failed"        // the TCP connection itself did not open
)

// Result is what one test says about one direction.
type Result string

// Results.
const (
	Passed   Result = "passed"
	Failed   Result = "failed"
	Untested Result = "untested"
)

// IPHeader returns the IP plus TCP header bytes that separate an MSS from
// the packet size for family 4 or 6 (40 or 60).
func IPHeader(family int) int {
	if family == 6 {
		return packet.IPv6HeaderLen + packet.TCPHeaderLen
	}
	return packet.IPv4HeaderLen + packet.TCPHeaderLen
}
