package analyze

import (
	"net/netip"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/flow"
)

// Mode says whether one capture or a pair was analysed.
type Mode string

// Modes.
const (
	ModeSingle Mode = "single"
	ModePair   Mode = "pair"
)

// Files names the captures analysed.
type Files struct {
	Single string `json:"capture,omitempty"`
	Client string `json:"client,omitempty"`
	Server string `json:"server,omitempty"`
}

// Result is what an analysis found; docs/analyze-json.md describes its
// JSON form.
type Result struct {
	SchemaVersion int                `json:"schema_version"`
	Mode          Mode               `json:"mode"`
	Files         Files              `json:"files"`
	Verdict       diagnose.Verdict   `json:"verdict"`
	Direction     diagnose.Direction `json:"direction"`
	// Path is the client and server address the conclusion is about: each
	// path is diagnosed on its own (Paths), and the top-level conclusion is
	// the path with a problem and the most unexplained losses, otherwise
	// the path with the most flows.
	Path   *FlowID `json:"path"`
	Family int     `json:"family"`
	// PathMTU is diagnose's path MTU: the largest IP packet seen to get
	// through in every direction that was tested. PathMTUExact says the
	// capture proves it to the byte (an ICMP too-big stated it and packets
	// of that size got through, or the next size up was lost);
	// PathMTURange is the bracket otherwise.
	PathMTU      int         `json:"path_mtu"`
	PathMTUExact bool        `json:"path_mtu_exact"`
	PathMTURange MTUBracket  `json:"path_mtu_range"`
	Upstream     DirSummary  `json:"upstream"`
	Downstream   DirSummary  `json:"downstream"`
	ICMPTooBig   int         `json:"icmp_too_big"`
	ICMP         []ICMPEvent `json:"icmp"`
	// Fragments counts IP fragments seen; Fragmented lists the address
	// pairs that sent them.
	Fragments  int         `json:"fragments"`
	Fragmented []FragPairs `json:"fragmented"`
	// Handshakes lists every TLS handshake; Outcomes counts them by
	// outcome (including those past Limits.MaxRecords, not listed).
	Handshakes          []Handshake              `json:"handshakes"`
	HandshakesNotListed int                      `json:"handshakes_not_listed"`
	Outcomes            map[diagnose.Outcome]int `json:"outcomes"`
	// MatchedFlows and Matching are set in pair mode.
	MatchedFlows *int      `json:"matched_flows,omitempty"`
	Matching     *Matching `json:"matching,omitempty"`
	// Lost lists lost wire packets (at most maxLostListed; LostNotListed
	// counts the rest).
	Lost          []LostPacket       `json:"lost"`
	LostNotListed int                `json:"lost_not_listed"`
	Findings      []diagnose.Finding `json:"findings"`
	Fixes         []diagnose.Fix     `json:"fixes"`
	Stats         map[string]Stats   `json:"stats"`
	// Warnings say what the conclusion could not take in: a capture cut
	// short (analysed up to the cut, its offset in Stats.TruncatedAt).
	Warnings []string `json:"warnings,omitempty"`
	// Paths lists each path's conclusion (problems first, at most 200);
	// PathVerdicts counts every path by verdict.
	Paths        []PathResult             `json:"paths"`
	PathVerdicts map[diagnose.Verdict]int `json:"path_verdicts"`

	stalled []*ladder
}

// MTUBracket is the path MTU's bracket: the largest packet that got
// through and the smallest that was lost without explanation (0: none).
// SentBetween counts the packets sent with sizes between them whose fate
// says nothing of the size (lost with a larger packet, delivered merged,
// unknown when the capture ended): 0 means nothing between was sent.
type MTUBracket struct {
	Delivered   int `json:"delivered"`
	Lost        int `json:"lost"`
	SentBetween int `json:"sent_between"`
}

// DirSummary is what one direction showed, over every flow of the family.
type DirSummary struct {
	// LargestDelivered is the largest wire packet that got through;
	// SmallestLost the smallest lost without an ICMP too-big and never
	// recovered by smaller packets (0: none).
	LargestDelivered int `json:"largest_delivered"`
	SmallestLost     int `json:"smallest_lost"`
	// LostPackets counts every lost wire packet; LostSilently those
	// nothing explained; LostSignalled those an ICMP too-big was sent
	// about; Recovered those whose bytes got through in smaller packets.
	LostPackets   int `json:"lost_packets"`
	LostSilently  int `json:"lost_silently"`
	LostSignalled int `json:"lost_signalled"`
	Recovered     int `json:"recovered_smaller"`
	// TooBigReachedSender counts ICMP too-big messages about this
	// direction's packets seen at the sender (in the sender's capture in
	// pair mode; in the one capture otherwise).
	TooBigReachedSender int `json:"icmp_too_big_reached_sender"`
}

// ICMPEvent is one ICMP fragmentation-needed or packet-too-big message.
type ICMPEvent struct {
	Time   time.Time `json:"time"`
	From   string    `json:"from"`
	MTU    int       `json:"mtu"`
	Quoted int       `json:"quoted_size"`
	// Flow is the quoted packet's source and destination, when it was TCP.
	Flow *FlowID `json:"flow,omitempty"`
	// Capture names the capture it was in (pair mode).
	Capture string `json:"capture,omitempty"`
}

// FlowID names a flow by its client and server.
type FlowID struct {
	Client string `json:"client"`
	Server string `json:"server"`
}

// FragPairs is an address pair that sent IP fragments.
type FragPairs struct {
	Src   string `json:"src"`
	Dst   string `json:"dst"`
	Count int    `json:"count"`
}

// Handshake is one TLS handshake with its outcome and evidence.
type Handshake struct {
	flow.Handshake
	// LostPackets counts the wire packets of this flow that were lost.
	LostPackets int `json:"lost_packets"`
	// ClientAtServer is the client's address and port as the server-side
	// capture shows it (pair mode; differs behind NAT).
	ClientAtServer *netip.AddrPort `json:"client_at_server,omitempty"`
}

// LostPacket is one wire packet that never reached the other end.
type LostPacket struct {
	Direction diagnose.Direction `json:"direction"`
	IPSize    int                `json:"ip_size"`
	// Time is when the sender sent it (pair mode, or a sender-side
	// capture), or when its absence showed at the receiver (inferred).
	Time time.Time `json:"time"`
	// TMS is Time in milliseconds since the flow's first packet.
	TMS  float64 `json:"t_ms"`
	Flow FlowID  `json:"flow"`
	// Seq is the byte range of the stream it carried (offsets from the
	// first data byte).
	Seq [2]uint32 `json:"seq"`
	// How says how the loss is known: not_seen_at_receiver (pair mode:
	// sent in one capture, never in the other), never_acknowledged
	// (retransmitted before any acknowledgement), hole (the receiver's
	// capture lacks those bytes while later ones arrived; the size is
	// inferred from the MSS).
	How            string `json:"how"`
	Retransmission bool   `json:"retransmission"`
	ICMPSignalled  bool   `json:"icmp_signalled"`
	// RecoveredSmaller says its bytes got through later in smaller packets.
	RecoveredSmaller bool `json:"recovered_smaller"`
	// WithLarger says it was lost together with a larger packet of the
	// same segmentation-offload super-segment (handed on as one inside
	// the sending host or a virtual link, dropped as one): not evidence
	// of its own size.
	WithLarger bool `json:"with_larger"`
}

// PathResult is the conclusion about one path: one client address and
// one server address.
type PathResult struct {
	Client       string             `json:"client"`
	Server       string             `json:"server"`
	Family       int                `json:"family"`
	Verdict      diagnose.Verdict   `json:"verdict"`
	Direction    diagnose.Direction `json:"direction"`
	PathMTU      int                `json:"path_mtu"`
	PathMTUExact bool               `json:"path_mtu_exact"`
	PathMTURange MTUBracket         `json:"path_mtu_range"`
	Flows        int                `json:"flows"`
	Handshakes   int                `json:"handshakes"`
	Completed    int                `json:"completed"`
	// LostSilently counts packets lost without explanation above the
	// largest size delivered.
	LostSilently int `json:"lost_silently"`
}
