package flow

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/tlswire"
)

// Why a handshake ended.
const (
	endTimeout = iota // the handshake timeout passed
	endFlush          // the capture ended
	endClosed         // FIN or RST before completion
	endDone           // completed
	endAlert          // an alert record
	endNotTLS         // a peer's first bytes were not TLS
)

// finish classifies flow i, emits its handshake when it is one, and keeps
// the flow (finished) so that its remaining packets are recognised.
func (t *Tracker) finish(i int32, why int, now int64) {
	f := t.at(i)
	if f.done {
		return
	}
	f.done = true
	switch {
	case why == endTimeout:
		// When the timeout fell due, not when a later packet (after a gap
		// in the capture) made the tracker notice.
		f.end = min(now, f.start+t.timeout)
		f.last = now
	case why == endFlush:
		// The capture ended at the flow's last packet, whatever the
		// caller's clock says.
		if f.end == 0 {
			f.end = f.last
		}
	default:
		f.last = now
		if f.end == 0 {
			f.end = now
		}
	}
	t.scanPrefix(f)
	t.putBuf(f)
	if !f.connected {
		t.stats.HalfOpen++
		t.move(i, listDone)
		return
	}
	if f.plain && f.hello.end == 0 && !f.notTLS {
		// Plaintext and never a ClientHello: another protocol, or one that
		// never upgraded to TLS.
		if t.anyPort {
			t.stats.NotTLS++
			t.move(i, listDone)
			return
		}
		f.notTLS = true
	}
	if t.anyPort && f.hello.end == 0 && !f.notTLS && !t.knownTLS(f.server) {
		// Any port, and no hello header ever came (none sent, or its
		// first segment lost): nothing says this connection is TLS.
		t.stats.NotTLS++
		t.move(i, listDone)
		return
	}
	facts := f.facts(why, now)
	h := f.handshake(facts, why == endFlush, now)
	h.CaptureEnded = why == endFlush && facts.Interrupted
	for j, o := range outcomes {
		if o == h.Outcome {
			t.outcomes[j]++
		}
	}
	t.move(i, listDone)
	if t.obs != nil {
		t.obs.Handshake(f.oh, &h)
	}
	if t.cfg.Emit != nil {
		t.cfg.Emit(h)
	}
}

// facts turns what the flow saw into the classifier's facts.
func (f *flow) facts(why int, now int64) diagnose.HandshakeFacts {
	up, down := &f.d[sideUp], &f.d[sideDown]
	h := &f.hello
	// The capture's end cuts what was in flight (see dir.counts).
	cut := why == endFlush
	fx := diagnose.HandshakeFacts{Connected: f.connected, Passive: true}
	helloEnd := h.end
	if helloEnd == 0 {
		helloEnd = up.end
	}
	if h.end > 0 {
		fx.HelloBytes = int(h.end - h.base)
	}
	fx.HelloSent = int(min(up.end, helloEnd) - min(h.base, up.end))
	fx.HelloArrived = max(up.arrived(helloEnd)-int(h.base), 0)
	fx.HelloComplete = h.end > 0 && up.acked && int32(up.ack-h.end) >= 0 || down.end > down.plain
	if !fx.HelloComplete && fx.HelloSent > 0 {
		gaps, resent := up.counts(cut, now, f.rtt(), f.sack())
		fx.HelloLost, _ = up.lost(helloEnd, gaps, resent)
	}
	// The server's answer to the hello: what it sent after its plaintext.
	fx.FlightSent = int(down.end - down.plain)
	fx.FlightArrived = max(down.arrived(down.end)-int(down.plain), 0)
	fx.FlightComplete = f.completed
	gaps, resent := down.counts(cut, now, f.rtt(), f.sack())
	fx.FlightLost, _ = down.lost(down.end, gaps, resent)
	fx.ServerSilent = fx.HelloComplete && fx.FlightSent == 0
	if f.alert {
		fx.Alert = true
		who := "server"
		if f.alertBy == sideUp+1 {
			who = "client"
		}
		if f.alertEnc {
			fx.AlertName = who + ": encrypted alert"
		} else {
			fx.AlertName = who + ": " + tlswire.AlertName(f.alertDesc)
		}
	}
	if f.notTLS {
		fx.NotTLS = true
		who := "server"
		if f.notTLSBy == sideUp+1 {
			who = "client"
		}
		fx.NotTLSDetail = fmt.Sprintf("%s sent %q", who, f.prefix[:f.prefixN])
	}
	if f.closedBy != diagnose.NoSide {
		fx.ClosedBy = f.closedBy
		how := "closed (FIN)"
		if f.rst {
			how = "reset (RST)"
		}
		fx.CloseDetail = fmt.Sprintf("the %s %s the connection", f.closedBy, how)
	}
	switch why {
	case endTimeout:
		fx.TimedOut = true
	case endFlush:
		// The capture ended: what shows a loss stands as it is, the rest
		// was cut short.
		fx.TimedOut = fx.HelloLost || fx.FlightLost
		fx.Interrupted = !fx.TimedOut
	}
	return fx
}

// rtt is the round trip the three-way handshake showed, 0 when it was not
// seen: SYN to SYN-ACK (a capture near the client) or SYN-ACK to ACK (near
// the server), whichever is longer.
func (f *flow) rtt() int64 {
	if f.synAckAt == 0 || f.ackAt == 0 || !f.d[sideUp].syn {
		return 0
	}
	return max(f.synAckAt-f.first, f.ackAt-f.synAckAt)
}

// sack reports whether both SYNs offered SACK.
func (f *flow) sack() bool { return f.d[sideUp].sackOK && f.d[sideDown].sackOK }

// handshake builds the record emitted for a finished flow.
// cut says the capture ended at now while the flow was open (see
// dir.counts).
func (f *flow) handshake(fx diagnose.HandshakeFacts, cut bool, now int64) Handshake {
	up, down := &f.d[sideUp], &f.d[sideDown]
	out, detail := diagnose.ClassifyHandshake(fx)
	h := Handshake{
		Client: f.client, Server: f.server, Family: int(f.family),
		Start: time.Unix(0, f.first).UTC(), End: time.Unix(0, f.end).UTC(),
		Outcome: out, Detail: detail, Verified: f.verified,
		ClientMSS: int(up.mss), ServerMSS: int(down.mss),
		SNI: f.hello.sni, HelloBytes: fx.HelloBytes, PQKeyShare: f.hello.pq,
		PQOffered: f.hello.pqGroup && !f.hello.pq, MLDSA: f.hello.mldsa, HelloRead: f.hello.read,
		ResetHopDiffers: f.rstForged, HelloWhole: f.hello.parsed,
		FlightBytes: fx.FlightSent,
		Retransmits: up.retrans + down.retrans,
		TooBig:      f.tooBig, TooBigMTU: f.tooBigMTU,
		HelloTruncated: f.hello.truncated,
		Fragments:      up.frags + down.frags,
	}
	if h.Family == 0 {
		h.Family = 4
	}
	helloEnd := f.hello.end
	if helloEnd == 0 {
		helloEnd = up.end
	}
	for _, pc := range up.pieces[:up.np] {
		if int32(pc.start-helloEnd) < 0 && int32(pc.start-f.hello.base) >= 0 {
			h.HelloSegments++
			if pc.start == f.hello.base && f.hello.end > 0 && int32(pc.end-f.hello.end) < 0 {
				h.HelloSplit = true // its first segment ended before its records
			}
		}
	}
	if h.HelloBytes == 0 && fx.HelloLost {
		// The header never arrived (the head segment was lost): what the
		// client sent, by sequence numbers, is the hello's size.
		h.HelloBytes = int(up.end)
	}
	trust := f.tooBig == 0 && h.Retransmits == 0
	h.Up.Delivered = up.delivered(trust)
	gaps, resent := up.counts(cut, now, f.rtt(), f.sack())
	_, h.Up.Lost = up.lost(up.end, gaps, resent)
	h.Down.Delivered = down.delivered(trust)
	gaps, resent = down.counts(cut, now, f.rtt(), f.sack())
	_, h.Down.Lost = down.lost(down.end, gaps, resent)
	return h
}

// tlsPorts are the well-known ports of TLS services (HTTPS, DNS over TLS,
// IMAPS, POP3S, SMTPS, LDAPS, SIPS and HTTPS alternates).
var tlsPorts = [...]uint16{443, 8443, 853, 993, 995, 465, 636, 5061}

// knownTLS reports whether a server endpoint is taken to speak TLS when a
// connection's own bytes cannot say (its hello's head never arrived): a
// well-known TLS port, or an endpoint that received a ClientHello before.
func (t *Tracker) knownTLS(server netip.AddrPort) bool {
	for _, p := range tlsPorts {
		if server.Port() == p {
			return true
		}
	}
	_, ok := t.learned[server]
	return ok
}
