package analyze

import (
	"fmt"
	"sort"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/flow"
	"github.com/mtuscope/mtuscope/tlswire"
)

// tlsHead reads a TLS record header from the first bytes of a stream
// (tlswire.RecordStart): its content type and the record's whole length
// (header included).
func tlsHead(b []byte) (typ byte, total int, ok bool) {
	h, ok := tlswire.RecordStart(b)
	if !ok {
		return 0, 0, false
	}
	return h.Type, tlswire.RecordHeaderLen + h.Length, true
}

// tlsKind says whether a flow carries TLS, as far as its first bytes tell.
type tlsKind uint8

const (
	tlsUnknown tlsKind = iota // no client bytes at offset 0 were seen
	tlsYes
	tlsNo
)

// record is one finished flow: its classification and what became of its
// wire packets in each direction.
type record struct {
	f    *flowState
	hs   flow.Handshake
	tls  tlsKind
	wire [2][]wirePkt
	// srv is the same flow in the server-side capture (pair mode), paired
	// says wire was judged by comparing the two captures.
	srv    *flowState
	paired bool
	// handshake says the flow counts as a TLS handshake attempt.
	handshake bool
	// lostN counts the flow's lost wire packets.
	lostN int
	// tracked is the outcome package flow's tracker gave the handshake;
	// hsIndex the handshake's place in the capture's list (tracked), -1
	// none.
	tracked diagnose.Outcome
	hsIndex int32
}

// stalled reports whether the handshake stalled.
func (r *record) stalled() bool {
	return r.hs.Outcome == diagnose.StalledClientHello || r.hs.Outcome == diagnose.StalledServerFlight
}

// classify turns a finished flow and the fate of its wire packets into a
// handshake record in the shared outcome vocabulary.
func classify(f *flowState, wire [2][]wirePkt) record {
	r := record{f: f, wire: wire, hsIndex: f.hs}
	hs := &r.hs
	hs.Client, hs.Server, hs.Family = f.client, f.server, int(f.family)
	hs.Start, hs.End = time.Unix(0, f.first).UTC(), time.Unix(0, f.last).UTC()
	hs.ClientMSS, hs.ServerMSS = f.syn.mss, f.synAck.mss
	upD, downD := &f.d[up], &f.d[down]
	for di := range 2 {
		b := &hs.Up
		if di == down {
			b = &hs.Down
		}
		for _, w := range wire[di] {
			if w.retrans && !w.inferred {
				hs.Retransmits++
			}
			if w.status == lost {
				r.lostN++
			}
			switch {
			case w.status == delivered && !w.merged && w.ipLen > b.Delivered:
				b.Delivered = w.ipLen
			case w.silent() && (b.Lost == 0 || w.ipLen < b.Lost):
				b.Lost = w.ipLen
			}
		}
	}
	for _, tb := range f.tooBig {
		if tb.inherited {
			continue
		}
		hs.TooBig++
		if tb.mtu > 0 && (hs.TooBigMTU == 0 || tb.mtu < hs.TooBigMTU) {
			hs.TooBigMTU = tb.mtu
		}
	}
	typ, helloLen, isTLS := tlsHead(upD.head[:upD.headLen])
	switch {
	case upD.headLen >= 5 && (!isTLS || typ != tlswire.RecordHandshake):
		r.tls = tlsNo
	case isTLS:
		r.tls = tlsYes
		hs.HelloBytes = helloLen
		for _, w := range wire[up] {
			if !w.retrans && w.start < uint32(helloLen) {
				hs.HelloSegments++
			}
		}
	}
	hs.FlightBytes = int(downD.maxEnd)
	helloEnd := uint32(helloLen)
	helloAcked := isTLS && upD.ackSet && upD.ack >= helloEnd
	headMissing := upD.maxEnd > 0 && !upD.seen.covers(span{0, 1}) && !(upD.ackSet && upD.ack > 0)
	stype, _, sTLS := tlsHead(downD.head[:downD.headLen])
	lostDown := false
	for _, w := range wire[down] {
		if w.status == lost && !w.recovered && !w.signalled {
			lostDown = true
		}
	}
	unackedDown := downD.maxEnd > 0 && (!downD.ackSet || downD.ack < downD.maxEnd)
	rst := upD.rst || downD.rst
	switch {
	case !f.synAck.seen && upD.maxEnd == 0:
		hs.Outcome = diagnose.ConnectFailed
		hs.Detail = "no SYN-ACK seen"
		if downD.rst {
			hs.Detail = "refused (RST)"
		}
	case upD.maxEnd == 0:
		hs.Outcome = diagnose.NoClientHello
		if rst {
			hs.Outcome, hs.Detail = diagnose.Reset, "reset before any ClientHello"
		}
	case r.tls == tlsNo:
		hs.Outcome, hs.Detail = diagnose.NotTLS, "the client's first bytes are not a TLS handshake record"
	case headMissing || (isTLS && !helloAcked && !(upD.maxEnd > helloEnd && downD.maxEnd > 0)):
		hs.Outcome = diagnose.StalledClientHello
		hs.Detail = helloDetail(upD, helloLen, headMissing)
	case downD.headLen >= 5 && sTLS && stype == tlswire.RecordAlert:
		hs.Outcome = diagnose.Alert
		if downD.headLen >= 7 {
			hs.Detail = tlswire.AlertName(downD.head[6])
		}
	case downD.headLen >= 5 && !sTLS:
		hs.Outcome, hs.Detail = diagnose.NotTLS, fmt.Sprintf("the server answered %q", printable(downD.head[:downD.headLen]))
	case upD.maxEnd > helloEnd && downD.maxEnd > 0 && helloEnd > 0:
		hs.Outcome = diagnose.Completed
	case downD.maxEnd > 0 && (lostDown || unackedDown):
		hs.Outcome = diagnose.StalledServerFlight
		hs.Detail = fmt.Sprintf("%d of the server's %d bytes acknowledged", ackedBytes(downD), downD.maxEnd)
	case rst:
		hs.Outcome, hs.Detail = diagnose.Reset, "reset during the handshake"
	case downD.maxEnd == 0:
		hs.Outcome, hs.Detail = diagnose.Timeout, "the server acknowledged the ClientHello but sent nothing"
	default:
		hs.Outcome, hs.Detail = diagnose.Timeout, "the client never went on after the server's flight"
	}
	return r
}

func helloDetail(d *dirState, helloLen int, headMissing bool) string {
	if headMissing {
		return fmt.Sprintf("bytes %d-%d arrived, the start of the ClientHello never did", firstSeen(d), d.maxEnd)
	}
	return fmt.Sprintf("%d of the ClientHello's %d bytes acknowledged", ackedBytes(d), helloLen)
}

func ackedBytes(d *dirState) uint32 {
	if !d.ackSet {
		return 0
	}
	return d.ack
}

func firstSeen(d *dirState) uint32 {
	if len(d.seen.r) == 0 {
		return 0
	}
	return d.seen.r[0].start
}

func printable(b []byte) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c < 32 || c > 126 {
			c = '.'
		}
		out = append(out, c)
	}
	return string(out)
}

// sortFlows orders flows by their first packet, then by address, so that
// reports do not depend on map order.
func sortFlows(fs []*flowState) {
	sort.Slice(fs, func(i, j int) bool {
		if fs[i].first != fs[j].first {
			return fs[i].first < fs[j].first
		}
		return fs[i].client.String() < fs[j].client.String()
	})
}
