// Package flow follows TCP connections through captured packets and
// classifies the TLS handshake of each one, from packet timestamps alone:
// the same model serves live capture and capture files, and, through an
// Observer, package analyze's record of every wire packet.
package flow

import (
	"net/netip"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
)

// Handshake is one TLS handshake attempt as the packets showed it, with
// its outcome in the shared vocabulary and the evidence behind it.
type Handshake struct {
	// Client is the side that sent the SYN (or, for a flow seen from its
	// middle, the side that sent the ClientHello); Server the other.
	Client netip.AddrPort `json:"client"`
	Server netip.AddrPort `json:"server"`
	// Family is 4 or 6.
	Family int `json:"family"`
	// Start is the first packet's timestamp, End the last one's that
	// mattered to the outcome (or when the flow timed out).
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Outcome is how the handshake ended.
	Outcome diagnose.Outcome `json:"outcome"`
	// Detail is a short reason: the alert's name, why a flow counts as
	// stalled.
	Detail string `json:"detail,omitempty"`
	// CaptureEnded says the capture ended (or its clock jumped: another
	// capture began) before the handshake did, with nothing lost. Its
	// outcome is timeout, but nothing says it failed: the monitor does not
	// count it.
	CaptureEnded bool `json:"capture_ended,omitempty"`
	// Verified says the capture saw the TCP three-way exchange that an
	// off-path sender cannot fake cheaply: the client's SYN, the server's
	// SYN-ACK acknowledging it (client ISN+1), and a client segment
	// acknowledging the SYN-ACK with the server's ISN+1 (or a later
	// number of what the server sent), which only a client that received
	// the SYN-ACK knows. A flow seen from its middle, or whose sender
	// never saw the SYN-ACK (a spoofed source), is unverified: analyze
	// still classifies it; the monitor counts it apart. (Not in analyze's
	// JSON, where the user chose the capture.)
	Verified bool `json:"-"`

	// SYN options: the MSS each side offered, 0 when the SYN was not seen.
	ClientMSS int `json:"client_mss,omitempty"`
	ServerMSS int `json:"server_mss,omitempty"`
	// SNI is the ClientHello's server name.
	SNI string `json:"sni,omitempty"`
	// HelloBytes is the ClientHello record's size (header included) as the
	// record header states or, when the header never arrived (its segment
	// was lost), the bytes the client sent by sequence numbers;
	// HelloSegments how many wire segments of it were seen.
	HelloBytes    int `json:"hello_bytes,omitempty"`
	HelloSegments int `json:"hello_segments,omitempty"`
	// HelloTruncated says the capture's snap length cut the hello's
	// packets: its size is known from the sequence numbers, its content
	// (SNI, key shares) may not be.
	HelloTruncated bool `json:"hello_truncated,omitempty"`
	// PQKeyShare says the ClientHello carried a post-quantum (ML-KEM)
	// key share.
	PQKeyShare bool `json:"pq_key_share,omitempty"`
	// PQOffered says supported_groups listed a post-quantum group while
	// no post-quantum key share came with it (a server that wants it asks
	// with a HelloRetryRequest); MLDSA that signature_algorithms offered
	// an ML-DSA algorithm (0x0904-0x0906).
	PQOffered bool `json:"pq_group_offered,omitempty"`
	MLDSA     bool `json:"mldsa_sigalgs,omitempty"`
	// HelloRead says which of PQKeyShare, PQOffered and MLDSA are known
	// when false (tlswire.ReadKeyShare, ReadGroups, ReadSigAlgs bits): a
	// hello read whole sets all three; one of which only the first bytes
	// arrived (a device dropped the rest) those whose extension they held.
	// PQOffered needs both ReadKeyShare and ReadGroups.
	HelloRead uint8 `json:"-"`
	// HelloSplit says the hello's records did not end in the segment that
	// carried their start: the client sent it in more than one segment
	// (whether the later ones arrived or not).
	HelloSplit bool `json:"hello_split,omitempty"`
	// HelloWhole says the whole hello arrived and was read (not only its
	// first bytes): a client that stops in the middle of its hello (a
	// slow-hello flood, a scanner) sent no hello a device could refuse.
	HelloWhole bool `json:"-"`
	// ResetHopDiffers says the reset that ended the handshake came as
	// from the client but with another TTL (hop limit) than the client's
	// first packet: something on the path sent it (a firewall resetting
	// both ends, as S13's device does), not the client's own stack.
	ResetHopDiffers bool `json:"reset_hop_differs,omitempty"`
	// FlightBytes is how many bytes of the server's answer were seen.
	FlightBytes int `json:"flight_bytes,omitempty"`

	// Up and Down bracket the path MTU in each direction from what was
	// delivered (acknowledged or answered) and what never was.
	Up   Bracket `json:"up"`
	Down Bracket `json:"down"`
	// Retransmits counts retransmitted data segments, both directions.
	Retransmits int `json:"retransmits"`
	// TooBig counts ICMP fragmentation-needed / packet-too-big messages
	// that quoted this flow; TooBigMTU is the smallest MTU they reported.
	TooBig    int `json:"icmp_too_big,omitempty"`
	TooBigMTU int `json:"icmp_mtu,omitempty"`
	// Fragments counts IP fragments that carried this flow's segments.
	Fragments int `json:"fragments,omitempty"`
}

// Bracket is what one direction of a flow says about the path MTU, as IP
// packet sizes in bytes (wire sizes: a segmentation-offload super-segment
// counts as the segments it became).
type Bracket struct {
	// Delivered is the largest packet that got through, 0 when none was seen.
	Delivered int `json:"delivered,omitempty"`
	// Lost is the smallest packet that was sent (and retransmitted) but never
	// got through, 0 when nothing was lost.
	Lost int `json:"lost,omitempty"`
}

// Holds reports whether the bracket is consistent with a path MTU of mtu.
func (b Bracket) Holds(mtu int) bool {
	return (b.Delivered == 0 || b.Delivered <= mtu) && (b.Lost == 0 || b.Lost > mtu)
}
