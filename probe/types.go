package probe

import (
	"sync"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
)

// tcpInfo is the part of the kernel's TCP_INFO the tests read.
type tcpInfo struct {
	SndMSS, RcvMSS int // payload bytes per segment, sent and received (largest seen)
	Unacked        int // segments sent and not yet acknowledged
	Retrans        int
	PMTU           int
	RTT            time.Duration
	Timestamps     bool
	// BytesAcked is tcpi_bytes_acked: bytes the peer acknowledged, the SYN
	// counting as one.
	BytesAcked int64
	// OOOPackets is tcpi_rcv_ooopack: packets that arrived beyond a gap.
	OOOPackets int
}

// udpAnswer is what came back for one UDP probe.
type udpAnswer struct {
	Answer      diagnose.DatagramAnswer // port_unreachable, frag_needed, icmp_error, local_emsgsize or none
	MTU         int                     // for frag_needed and local_emsgsize
	From        string                  // the address that sent the ICMP error
	ICMPType    int
	ICMPCode    int
	LocalTooBig bool
	Sent        int
	// Verified is set on silence that two copies, each with the server's
	// ICMP token to itself, confirmed.
	Verified bool
	Err      error
}

// udpPacer tracks the answers of a run's UDP probes, so that silence is
// not mistaken for loss when it is the server's ICMP rate limit: Linux
// sends about one ICMP error a second to a client (net.ipv4.icmp_ratelimit),
// with a burst of six, so answered probes use up tokens that a later probe
// then lacks. A copy is "clear" when it was sent at least icmpRefill after
// the run's first probe and after every answer seen, and no other answer
// arrived while it was awaited.
type udpPacer struct {
	mu      sync.Mutex
	start   time.Time
	answers []time.Time
}

func newUDPPacer() *udpPacer { return &udpPacer{start: time.Now()} }

func (p *udpPacer) answered(t time.Time) {
	p.mu.Lock()
	p.answers = append(p.answers, t)
	p.mu.Unlock()
}

func (p *udpPacer) last() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.start
	for _, a := range p.answers {
		if a.After(l) {
			l = a
		}
	}
	return l
}

func (p *udpPacer) clear(sent, until time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if sent.Sub(p.start) < icmpRefill {
		return false
	}
	for _, a := range p.answers {
		if a.After(sent.Add(-icmpRefill)) && a.Before(until) {
			return false
		}
	}
	return true
}

// icmpRefill is how long a Linux host takes to earn back one ICMP error
// towards a client (net.ipv4.icmp_ratelimit, 1 s), plus a margin.
const icmpRefill = 1100 * time.Millisecond
