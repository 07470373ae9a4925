// Package probe runs mtuscope's active tests against a TLS endpoint: TCP
// connect, a TLS MSS ladder in both directions, a ClientHello size sweep,
// ClientHellos that differ in one thing each (what a device on the path
// rejects), UDP and ICMP tests with Don't Fragment and with fragments. Each test
// returns typed evidence; package diagnose turns the evidence into a
// verdict. Socket code is Linux-only (files ending in _linux.go); elsewhere
// (Windows, macOS) and with Config.Portable the portable mode runs instead:
// exact-size segments through a cooperating server (portable.go, exact.go).
//
// Politeness: a run opens at most MaxConnections TCP connections to the
// server (and MaxVariantConnections more for the ClientHello variants),
// never more than MaxInFlight at once, sends at most MaxDatagrams ICMP echo
// requests and at most 7 copies of each of its (at most six) UDP probes,
// spaced by the server's ICMP rate limit; Config.Timeout bounds the whole
// run.
package probe

// Bounds on what one run may cost the server and the network.
const (
	MaxConnections = 200 // TCP connections per run, all tests but the ClientHello variants together
	// MaxVariantConnections bounds the ClientHello variants' connections
	// per run (three rounds of at most ten, and the hellos they answer
	// retries on), beside MaxConnections.
	MaxVariantConnections = 36
	MaxInFlight           = 48  // TCP connections open at the same time
	MaxDatagrams          = 120 // ICMP echo requests per run
)
