package diagnose

import "fmt"

// Side names an end of a connection.
type Side uint8

// Sides.
const (
	NoSide Side = iota
	ClientSide
	ServerSide
)

func (s Side) String() string {
	switch s {
	case ClientSide:
		return "client"
	case ServerSide:
		return "server"
	}
	return "none"
}

// HandshakeFacts is what an observer saw of one TLS handshake attempt: the
// client's own sockets (probe), the server's (serve), or packets captured
// anywhere on the path (flow). Fields an observer cannot know stay zero;
// each field says which zero is safe.
type HandshakeFacts struct {
	// Connected says the TCP connection opened (the three-way handshake
	// completed, or data flowed).
	Connected bool

	// HelloBytes is the ClientHello's size as its record header states
	// (header included), 0 when unknown.
	HelloBytes int
	// HelloSent is how many bytes of the hello the client is known to have
	// sent, 0 when it sent none (for an observer that only knows a hello
	// was sent, any positive number).
	HelloSent int
	// HelloArrived is how many bytes of the hello are known to have reached
	// the server (acknowledged, selectively or not, or read by it).
	HelloArrived int
	// HelloComplete says the whole hello reached the server.
	HelloComplete bool
	// HelloLost says part of the hello was sent and never arrived: the
	// client retransmitted it unacknowledged, or later bytes arrived
	// across a gap that never filled. A client that simply stopped sending
	// half-way is not a loss.
	HelloLost bool

	// FlightSent is how many bytes of the server's answer were seen sent
	// (0 when the observer cannot see them); FlightArrived how many are
	// known to have reached the client.
	FlightSent    int
	FlightArrived int
	// FlightComplete says the server's whole first flight reached the
	// client (the client read it all, or acknowledged it and answered).
	FlightComplete bool
	// FlightLost says part of the server's flight was sent and never
	// arrived (retransmitted unacknowledged, or a gap before later bytes).
	FlightLost bool
	// ServerSilent says the observer knows the server sent nothing after
	// the hello arrived (only a capture can know this; the probe cannot).
	ServerSilent bool

	// Alert says a TLS alert (or a HelloRetryRequest the observer cannot
	// follow) ended the handshake; AlertName names it.
	Alert     bool
	AlertName string
	// NotTLS says a peer spoke something other than TLS; NotTLSDetail
	// says what (the first bytes, quoted).
	NotTLS       bool
	NotTLSDetail string

	// ClosedBy says which end closed (FIN) or reset (RST) the connection
	// before the handshake completed; CloseDetail words it.
	ClosedBy    Side
	CloseDetail string
	// TimedOut says the handshake timeout passed first.
	TimedOut bool
	// Interrupted says the observation ended before any conclusion (a run
	// cancelled, a capture that ended mid-handshake).
	Interrupted bool
	// Passive says the observer saw the packets themselves (a capture):
	// it knows what was lost, so a handshake that went no further with
	// nothing lost is a timeout, not a stall. The probe and the server,
	// which see only their sockets, take a flight that stopped coming
	// before the deadline for a stall.
	Passive bool
}

// ClassifyHandshake is the one set of outcome rules of mtuscope: probe,
// serve, the monitor and the analyzer all call it with what they saw. It
// returns the outcome and a short reason.
//
// A stall needs evidence of loss or of a stuck flight (for a passive
// observer, of loss: see Passive): a client that stops
// sending half-way through its hello, or gives up on a server that never
// answered, is a timeout or a reset, never a stall (SYN floods and
// half-sent hellos must not look like path-MTU black holes).
func ClassifyHandshake(f HandshakeFacts) (Outcome, string) {
	switch {
	case f.FlightComplete:
		return Completed, ""
	case f.NotTLS:
		if f.NotTLSDetail == "" {
			return NotTLS, "the peer does not speak TLS"
		}
		return NotTLS, f.NotTLSDetail
	case f.Alert:
		if f.AlertName == "" {
			return Alert, "alert"
		}
		return Alert, f.AlertName
	case !f.Connected:
		return ConnectFailed, "the TCP connection did not open"
	case f.Interrupted:
		return Timeout, "the observation ended before the handshake did"
	}
	stalled := f.TimedOut || f.ClosedBy == ClientSide
	// The observer knows the whole flight reached the client (it
	// acknowledged every byte sent): whatever stopped the handshake, the
	// flight did not stall.
	flightArrived := f.FlightSent > 0 && f.FlightArrived >= f.FlightSent
	switch {
	case !stalled && f.ClosedBy == ServerSide:
		return Reset, closeText(f, "the server")
	case !stalled:
		return Timeout, "no conclusion"
	case f.HelloSent == 0 && !f.HelloComplete:
		if f.ClosedBy == ClientSide && f.Passive {
			// A connection opened and closed unused (a browser's
			// preconnect): no TLS attempt to count as failed.
			return NoClientHello, closeText(f, "the client") + " without sending a ClientHello"
		}
		if f.ClosedBy == ClientSide {
			return Reset, closeText(f, "the client")
		}
		return NoClientHello, "connected, but no ClientHello within the timeout"
	case !f.HelloComplete && f.HelloLost:
		return StalledClientHello, helloText(f)
	case !f.HelloComplete:
		if f.ClosedBy == ClientSide {
			return Reset, closeText(f, "the client")
		}
		return Timeout, fmt.Sprintf("the client sent %d bytes of its ClientHello and nothing was lost", f.HelloSent)
	case f.FlightLost || (f.TimedOut && !f.ServerSilent && !f.Passive && !flightArrived):
		return StalledServerFlight, flightText(f)
	case f.ClosedBy == ClientSide:
		return Reset, closeText(f, "the client")
	case !f.ServerSilent && f.FlightSent > 0:
		return Timeout, fmt.Sprintf("%d of the server's %d bytes arrived and nothing was lost; the handshake went no further", f.FlightArrived, f.FlightSent)
	}
	return Timeout, "the server never answered the ClientHello"
}

func closeText(f HandshakeFacts, who string) string {
	if f.CloseDetail != "" {
		return f.CloseDetail
	}
	return who + " closed the connection"
}

func helloText(f HandshakeFacts) string {
	if f.HelloBytes > 0 {
		return fmt.Sprintf("%d of the ClientHello's %d bytes arrived", f.HelloArrived, f.HelloBytes)
	}
	return fmt.Sprintf("%d of %d bytes of the ClientHello arrived", f.HelloArrived, f.HelloSent)
}

func flightText(f HandshakeFacts) string {
	if f.FlightSent > 0 {
		return fmt.Sprintf("%d of the server's %d bytes arrived", f.FlightArrived, f.FlightSent)
	}
	return fmt.Sprintf("%d bytes of the server's flight arrived", f.FlightArrived)
}
