package server

import (
	"fmt"

	"github.com/mtuscope/mtuscope/api"
	"github.com/mtuscope/mtuscope/diagnose"
)

// What the server saw of one rung connection, in the terms of the one
// handshake classifier: how far its hello got, whether anything arrived,
// whether a reset it did not send ended it.

// rungFacts states what the page and the server saw of a rung's handshake
// (best: the server's record of it, nil when it saw none) for the one
// classifier. The server cannot see its flight arrive; a handshake it saw
// through, or a hello step the page completed, means the flight arrived.
func rungFacts(br api.BrowserRung, best *snapshot, plain bool) diagnose.HandshakeFacts {
	f := diagnose.HandshakeFacts{FlightComplete: br.Hello == api.StepOK}
	if best == nil {
		return f
	}
	f.Connected = true
	if plain && best.NotTLS {
		// A plain-HTTP request and its answer stand for the handshake: the
		// request arrived when the handler named the session on it.
		f.HelloSent, f.HelloComplete = 1, best.Session != ""
		f.TimedOut = !f.FlightComplete
		return f
	}
	f.HelloBytes = best.HelloExpected
	f.HelloSent = max(best.HelloGot, 1) // the client sent a hello, or the start of one
	f.HelloArrived = best.HelloGot
	switch {
	case best.NotTLS:
		f.NotTLS = true
	case best.HelloHash == "" && !best.HelloUnread && nothingArrived(*best):
		// Not one byte came, in order or beyond a gap: a busy browser that
		// had not sent its hello when it gave up, a preconnect, or a
		// hello lost whole. The server cannot tell them apart, so the
		// rung says nothing of the path (a hello larger than a segment,
		// as browsers' are, shows a loss by its tail arriving).
		f.HelloSent, f.TimedOut = 0, true
	case best.Reset && !best.HandshakeDone:
		// An RST the server did not send ended the connection while the
		// hello arrived or was answered: a reset, not a loss.
		f.HelloComplete = best.HelloHash != ""
		f.ClosedBy, f.CloseDetail = diagnose.ClientSide, resetText(*best)
	case best.HelloHash == "":
		// The hello never arrived whole before the page gave up; a
		// sniffer that stopped copying says nothing of a loss.
		f.HelloLost, f.TimedOut = !best.HelloUnread, true
	case !best.HandshakeDone:
		f.HelloComplete, f.TimedOut = true, true
		if best.Info.Valid && best.FlightBytes > 0 {
			// The server's kernel knows how much of its flight the
			// client acknowledged: all of it is no stall of the flight.
			f.FlightSent, f.FlightArrived = int(best.FlightBytes), int(min(best.Info.BytesAcked, best.FlightBytes))
		}
	default:
		f.HelloComplete, f.FlightComplete = true, true
	}
	return f
}

// tlsClass is how far an unfinished TLS connection got; "" when nothing
// arrived at all, in order or beyond a gap (a browser's retry opened just
// before the page gave up has not sent its hello yet: that says nothing).
func tlsClass(s snapshot) string {
	switch {
	case s.NotTLS:
		return "not_tls"
	case s.HelloHash == "" && s.HelloUnread:
		return "unread"
	case s.HelloHash == "" && nothingArrived(s):
		return ""
	case s.Reset && !s.HandshakeDone:
		return "reset"
	case s.HelloHash == "":
		return "hello_lost"
	case !s.HandshakeDone && flightAcked(s):
		return "flight_acked"
	}
	return "flight_lost"
}

// flightAcked says the client acknowledged the server's whole first
// flight (TCP_INFO needed to know): it crossed the path.
func flightAcked(s snapshot) bool {
	return s.Info.Valid && s.FlightBytes > 0 && s.Info.BytesAcked >= s.FlightBytes
}

// fullSegmentArrived says a segment of seg bytes (the rung's largest)
// reached the server on the connection: the kernel measured one
// (rcv_mss) and as many bytes arrived.
func fullSegmentArrived(s snapshot, seg int) bool {
	return s.Info.Valid && s.Info.RcvMSS >= minObservedMSS && s.Info.RcvMSS >= seg && s.Info.BytesReceived >= int64(seg)
}

// resetText words a reset the server did not send.
func resetText(s snapshot) string {
	what := "before any of the ClientHello arrived"
	switch {
	case s.HelloHash != "":
		what = fmt.Sprintf("after the whole ClientHello (%d bytes) arrived", s.HelloExpected)
	case s.HelloExpected > 0:
		what = fmt.Sprintf("after %d of the ClientHello's %d bytes arrived", s.HelloGot, s.HelloExpected)
	case s.HelloGot > 0:
		what = fmt.Sprintf("after %d bytes of the ClientHello arrived", s.HelloGot)
	}
	return fmt.Sprintf("reset by an RST the server did not send, %s, %d ms after the connection opened", what, s.ResetMs)
}

// nothingArrived says the server received nothing of the connection's
// data, in order or beyond a gap (TCP_INFO needed to know).
func nothingArrived(s snapshot) bool {
	return s.HelloGot == 0 && s.Info.Valid && s.Info.RcvOOOPack == 0 && s.Info.BytesReceived == 0
}
