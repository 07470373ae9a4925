package monitor

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net/netip"
	"sync"
	"time"

	"github.com/mtuscope/mtuscope/asn"
	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/flow"
)

// HandshakeLog writes one JSON line per stalled or failed handshake, with
// Zeek's field names for what Zeek also has (ts, uid, id.orig_h, ...), for
// log pipelines. Completed handshakes and connections that never sent a
// ClientHello (scans, SYN floods) are not written. Unverified handshakes
// (flow.Handshake.Verified: one forged segment each can make them) are
// written at most UnverifiedLogRate a second of packet time, in bursts of
// at most UnverifiedLogBurst; the rest are counted (Suppressed), so that
// a flood of forged segments cannot fill the disk.
type HandshakeLog struct {
	mu     sync.Mutex
	w      *bufio.Writer
	lookup func(netip.Addr) asn.Result
	lines  uint64
	// The unverified lines' token bucket, in packet time.
	tokens     float64
	refilled   time.Time
	suppressed uint64
}

// The handshake log's bound on lines of unverified handshakes.
const (
	UnverifiedLogRate  = 1  // lines a second
	UnverifiedLogBurst = 60 // lines at once
)

// NewHandshakeLog writes to w; lookup names each client's network (nil:
// the /24 or /48).
func NewHandshakeLog(w io.Writer, lookup func(netip.Addr) asn.Result) *HandshakeLog {
	if lookup == nil {
		lookup = func(a netip.Addr) asn.Result { return asn.Result{Addr: a, Prefix: fallbackPrefix(a)} }
	}
	return &HandshakeLog{w: bufio.NewWriterSize(w, 64<<10), lookup: lookup, tokens: UnverifiedLogBurst}
}

// HandshakeRecord is one line of the log.
type HandshakeRecord struct {
	TS            float64          `json:"ts"` // start, seconds since the epoch
	UID           string           `json:"uid"`
	OrigH         string           `json:"id.orig_h"`
	OrigP         uint16           `json:"id.orig_p"`
	RespH         string           `json:"id.resp_h"`
	RespP         uint16           `json:"id.resp_p"`
	Duration      float64          `json:"duration"`
	Outcome       diagnose.Outcome `json:"outcome"`
	Verified      bool             `json:"verified"` // see flow.Handshake.Verified
	Detail        string           `json:"detail,omitempty"`
	Stall         string           `json:"stall,omitempty"` // "upstream" or "downstream" when it counts as a stall
	Network       string           `json:"network"`
	ASN           uint32           `json:"asn"`
	Org           string           `json:"org,omitempty"`
	ServerName    string           `json:"server_name,omitempty"`
	HelloBytes    int              `json:"hello_bytes,omitempty"`
	HelloSegments int              `json:"hello_segments,omitempty"`
	PQKeyShare    bool             `json:"pq_key_share"`
	PQOffered     bool             `json:"pq_group_offered,omitempty"`
	MLDSA         bool             `json:"mldsa_sigalgs,omitempty"`
	HelloSplit    bool             `json:"hello_split,omitempty"`
	ResetByPath   bool             `json:"reset_hop_differs,omitempty"`
	FlightBytes   int              `json:"flight_bytes,omitempty"`
	ClientMSS     int              `json:"client_mss,omitempty"`
	ServerMSS     int              `json:"server_mss,omitempty"`
	UpDelivered   int              `json:"up_delivered,omitempty"`
	UpLost        int              `json:"up_lost,omitempty"`
	DownDelivered int              `json:"down_delivered,omitempty"`
	DownLost      int              `json:"down_lost,omitempty"`
	Retransmits   int              `json:"retransmits"`
	ICMPTooBig    int              `json:"icmp_too_big,omitempty"`
	ICMPMTU       int              `json:"icmp_mtu,omitempty"`
}

// UID is a Zeek-style connection identifier derived from the 4-tuple and
// the start second, so that a replay of a capture gives the live run's
// IDs (two captures of the same packets differ in their timestamps by a
// microsecond or so; a client does not reuse a port within a second).
func UID(h *flow.Handshake) string {
	f := fnv.New64a()
	b, _ := h.Client.MarshalBinary()
	f.Write(b)
	b, _ = h.Server.MarshalBinary()
	f.Write(b)
	binary.Write(f, binary.BigEndian, h.Start.Unix())
	const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	v := f.Sum64()
	out := []byte{'C'}
	for i := 0; i < 11; i++ {
		out = append(out, digits[v%62])
		v /= 62
	}
	return string(out)
}

// Logged reports whether the log writes h when it is verified (an
// unverified one only within the log's rate for them).
func Logged(h *flow.Handshake) bool {
	return h.Outcome != diagnose.Completed && h.Outcome != diagnose.NoClientHello
}

// Write logs h if it stalled or failed (unverified: within the rate).
func (l *HandshakeLog) Write(h flow.Handshake) error {
	if !Logged(&h) || !h.Verified && !l.admit(h.End) {
		return nil
	}
	r := l.lookup(h.Client.Addr())
	rec := HandshakeRecord{
		TS: float64(h.Start.UnixNano()) / 1e9, UID: UID(&h),
		OrigH: h.Client.Addr().String(), OrigP: h.Client.Port(), RespH: h.Server.Addr().String(), RespP: h.Server.Port(),
		Duration: h.End.Sub(h.Start).Seconds(), Outcome: h.Outcome, Verified: h.Verified, Detail: h.Detail,
		Network: r.Group(), ASN: r.ASN, Org: r.Org, ServerName: h.SNI,
		HelloBytes: h.HelloBytes, HelloSegments: h.HelloSegments, PQKeyShare: h.PQKeyShare, FlightBytes: h.FlightBytes,
		PQOffered: h.PQOffered, MLDSA: h.MLDSA, HelloSplit: h.HelloSplit, ResetByPath: h.ResetHopDiffers,
		ClientMSS: h.ClientMSS, ServerMSS: h.ServerMSS,
		UpDelivered: h.Up.Delivered, UpLost: h.Up.Lost, DownDelivered: h.Down.Delivered, DownLost: h.Down.Lost,
		Retransmits: h.Retransmits, ICMPTooBig: h.TooBig, ICMPMTU: h.TooBigMTU,
	}
	switch stallKind(&h) {
	case stallUp:
		rec.Stall = string(diagnose.Upstream)
	case stallDown:
		rec.Stall = string(diagnose.Downstream)
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("handshake log: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines++
	l.w.Write(b)
	if err := l.w.WriteByte('\n'); err != nil {
		return fmt.Errorf("handshake log: %w", err)
	}
	return nil
}

// Flush writes out what is buffered.
func (l *HandshakeLog) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.w.Flush(); err != nil {
		return fmt.Errorf("handshake log: %w", err)
	}
	return nil
}

// admit takes a token for an unverified line at packet time now, or
// counts the line suppressed.
func (l *HandshakeLog) admit(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.After(l.refilled) {
		if !l.refilled.IsZero() {
			l.tokens = min(UnverifiedLogBurst, l.tokens+now.Sub(l.refilled).Seconds()*UnverifiedLogRate)
		}
		l.refilled = now
	}
	if l.tokens < 1 {
		l.suppressed++
		return false
	}
	l.tokens--
	return true
}

// Suppressed is how many lines of unverified handshakes were not written.
func (l *HandshakeLog) Suppressed() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.suppressed
}

// Lines is how many lines were written.
func (l *HandshakeLog) Lines() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lines
}
