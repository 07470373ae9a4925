// Package handshakestream makes synthetic streams of classified
// handshakes (flow.Handshake), as the flow tracker emits them, from
// networks that each fail in their own way: the input of the monitor's
// and watch's statistics tests.
package handshakestream

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/flow"
)

// Server is the address every synthetic handshake goes to.
var Server = netip.MustParseAddrPort("203.0.113.80:443")

// Kinds of synthetic network.
const (
	Clean = "clean" // every handshake completes
	S2    = "s2"    // black hole both ways at 1400: big hellos stall upstream, server flights downstream
	Down  = "down"  // only server-to-client packets above 1400 bytes are lost
	Lossy = "lossy" // a share (Loss) of handshakes stall by bad luck, looking exactly like a black hole
)

// Network is a synthetic client network: a /24 and how its handshakes end.
type Network struct {
	Prefix string  // "192.0.2": clients are 192.0.2.1-250
	Per    int     // handshakes per minute
	Kind   string  // Clean, S2, Down or Lossy
	Loss   float64 // Lossy: the share of handshakes that stall
}

// Handshake returns the i-th handshake of the network, decided at ts, a
// verified one (the tracker saw its SYN exchange).
// Half the clients send Go's 1507-byte post-quantum hello in two
// segments, half curl's 517-byte one; the server's flight is 3500 bytes.
func (n Network) Handshake(rng *rand.Rand, i int, ts time.Time) flow.Handshake {
	client := netip.AddrPortFrom(netip.MustParseAddr(fmt.Sprintf("%s.%d", n.Prefix, 1+i%250)), uint16(40000+i%20000))
	pq := i%2 == 0
	h := flow.Handshake{Client: client, Server: Server, Family: 4, Start: ts.Add(-200 * time.Millisecond), End: ts, Verified: true,
		ClientMSS: 1460, ServerMSS: 1460, HelloBytes: 517, HelloSegments: 1, FlightBytes: 3500, PQKeyShare: pq, SNI: "example.test"}
	if pq {
		h.HelloBytes, h.HelloSegments = 1507, 2
	}
	done := func() flow.Handshake {
		h.Outcome = diagnose.Completed
		h.Up = flow.Bracket{Delivered: min(h.HelloBytes, 1460) + 40}
		h.Down = flow.Bracket{Delivered: 1500}
		return h
	}
	stallDown := func() flow.Handshake {
		h.Outcome = diagnose.StalledServerFlight
		h.Start = ts.Add(-20 * time.Second) // decided when the tracker's timeout ran out
		h.Up = flow.Bracket{Delivered: min(h.HelloBytes, 1460) + 40}
		h.Down = flow.Bracket{Delivered: 580, Lost: 1500}
		h.Retransmits = 5
		return h
	}
	switch n.Kind {
	case Clean:
		return done()
	case Lossy:
		if rng.Float64() < n.Loss {
			return stallDown()
		}
		return done()
	case Down:
		return stallDown()
	case S2:
		if pq {
			h.Outcome = diagnose.StalledClientHello
			h.Start = ts.Add(-20 * time.Second)
			h.Up = flow.Bracket{Delivered: 1507 - 1460 + 5 + 40, Lost: 1500}
			h.Retransmits = 4
			return h
		}
		return stallDown()
	}
	panic("handshakestream: unknown kind " + n.Kind)
}

// Stream returns minutes of traffic from the networks starting at from,
// in the order the tracker emits it (by End).
func Stream(rng *rand.Rand, from time.Time, minutes int, nets ...Network) []flow.Handshake {
	var hs []flow.Handshake
	i := 0
	for m := 0; m < minutes; m++ {
		for _, n := range nets {
			for k := 0; k < n.Per; k++ {
				i++
				ts := from.Add(time.Duration(m)*time.Minute + time.Duration(rng.IntN(55_000))*time.Millisecond)
				hs = append(hs, n.Handshake(rng, i, ts))
			}
		}
	}
	slices.SortStableFunc(hs, func(a, b flow.Handshake) int { return a.End.Compare(b.End) })
	return hs
}
