package flow

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/packet"
	"github.com/mtuscope/mtuscope/tlswire"
)

// Defaults of Config.
const (
	DefaultMaxFlows         = 65536
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultMaxBuffer        = 4096
	// maxLearned bounds the TLS server endpoints remembered when Ports is
	// empty (see Config.Ports).
	maxLearned = 4096
	// maxClockGap is the longest silence in packet time taken for a quiet
	// link: past it, or when the clock goes back by more than the
	// handshake timeout, one capture ended and another began (files
	// concatenated, a capture restarted), and the handshakes open at the
	// jump are cut as at the end of a capture.
	maxClockGap = time.Hour
)

// Config sets up a Tracker. The zero value works: every port, defaults.
type Config struct {
	// Ports are the server ports whose connections carry TLS. Empty: any
	// port, TLS recognised from the bytes (a ClientHello record header,
	// 0x16 0x03 0x00-0x04, then handshake type 1, or an SSLv2-format
	// hello), at the start of the client's stream or of a client segment
	// after plaintext (STARTTLS, a server that speaks first: at most 4 KB
	// of the client's and 16 KB of the server's); other connections are
	// dropped without a word (counted in Stats.NotTLS) once they end or
	// pass those bounds. A connection whose
	// hello lost its first segment shows no header: in that mode it counts
	// as TLS when its server port is a well-known TLS port (443, 8443, 853,
	// 993, 995, 465, 636, 5061) or an earlier connection to the same server
	// address and port carried a ClientHello.
	Ports []uint16
	// MaxFlows bounds the flow table (default 65536). When it is full a new
	// connection evicts, in this order, the oldest finished flow, the oldest
	// unverified unfinished handshake (see Handshake.Verified: forged
	// segments cannot push out real connections), the oldest half-open one
	// (a SYN never answered or never completed), the oldest verified
	// unfinished handshake; evictions of the last three are counted and
	// never emitted.
	MaxFlows int
	// HandshakeTimeout is how long, in packet time from the connection's
	// opening, a handshake may take before it is classified as it stands
	// (default 10 s). It is also how long a SYN waits to open the
	// connection, and how long a finished flow is remembered after its last
	// packet (so its stray segments are not taken for new connections).
	HandshakeTimeout time.Duration
	// MaxBuffer bounds the bytes of the ClientHello kept per flow while it
	// is reassembled (default 4096); a larger hello is reported with its
	// size but not parsed. At most max(64, MaxFlows/8) hellos are
	// reassembled at once (32 MiB with the defaults): beyond that, under a
	// flood of half-sent hellos, a hello is classified from its sequence
	// numbers alone, without its SNI and key shares (Stats.HelloUnparsed).
	MaxBuffer int
	// Emit receives each finished handshake, once, from the goroutine that
	// calls Packet, Advance or Flush.
	Emit func(Handshake)
	// Observer, when set, is handed every connection the tracker follows,
	// segment by segment (see Observer).
	Observer Observer
	// Linger is how long a flow whose handshake ended is remembered after
	// its last packet (default HandshakeTimeout): its later segments still
	// go to the Observer.
	Linger time.Duration
}

// Stats are a Tracker's counters.
type Stats struct {
	// Open is the flows in the table now, Max the table's bound.
	Open int `json:"open"`
	Max  int `json:"max"`
	// Packets counts what Packet was given; Ignored those that belonged to
	// no tracked connection (other protocols, mid-flow segments with no
	// ClientHello, ports not watched).
	Packets uint64 `json:"packets"`
	Ignored uint64 `json:"ignored"`
	// Evicted counts unfinished flows pushed out of a full table.
	Evicted uint64 `json:"evicted"`
	// HalfOpen counts connections that never opened (a SYN with no
	// SYN-ACK, or a SYN-ACK never acknowledged): not handshakes, never
	// emitted.
	HalfOpen uint64 `json:"half_open"`
	// NotTLS counts connections dropped because their first bytes were not
	// a ClientHello, when Ports is empty.
	NotTLS uint64 `json:"not_tls"`
	// HelloUnparsed counts hellos not reassembled for want of a buffer.
	HelloUnparsed uint64 `json:"hello_unparsed"`
	// Handshakes counts emitted handshakes by outcome.
	Handshakes map[diagnose.Outcome]uint64 `json:"handshakes"`
	// TooBig counts ICMP too-big messages, TooBigMatched those that quoted
	// a tracked flow. Fragments counts IP fragments that no flow could
	// claim (non-first fragments, fragments of other protocols).
	TooBig        uint64 `json:"icmp_too_big"`
	TooBigMatched uint64 `json:"icmp_too_big_matched"`
	Fragments     uint64 `json:"fragments"`
}

// outcomes indexes Stats.Handshakes.
var outcomes = [...]diagnose.Outcome{diagnose.Completed, diagnose.StalledClientHello, diagnose.StalledServerFlight,
	diagnose.NoClientHello, diagnose.Alert, diagnose.Reset, diagnose.Timeout, diagnose.NotTLS, diagnose.ConnectFailed}

// Tracker follows TCP connections and their TLS handshakes through decoded
// packets. It is not safe for concurrent use: one goroutine feeds it.
//
// A connection starts with a SYN (the client is its sender), a SYN-ACK
// (its receiver), or, for a capture that starts mid-connection, a segment
// that begins with a ClientHello (its sender); any other segment of an
// unknown connection is ignored. It is a handshake once it opened (the
// client acknowledged the SYN-ACK, or sent data): SYNs that never open
// are counted as half-open and never emitted, so a SYN flood cannot look
// like stalls. Each direction keeps its sequence space relative to its
// first byte (serial arithmetic, so wrap is harmless), the wire segments
// it sent (a super-segment of TSO, or of GRO on the receiving host, counts
// as the segments of the negotiated MSS it was cut into), which of them
// the peer acknowledged or SACKed, retransmissions and out-of-order data.
// The handshake ends, and is emitted once:
//   - completed: the client sent a record after the ServerHello while
//     acknowledging all the server had sent (tshark's rule, plus the ACK);
//   - alert or not_tls: the first records say so;
//   - on a FIN or RST, or when HandshakeTimeout (from the first packet)
//     passes: diagnose.ClassifyHandshake over what was seen. A stall needs
//     a loss: hello bytes retransmitted unacknowledged or missing below a
//     tail that arrived (stalled_clienthello); the same for the server's
//     answer (stalled_server_flight). A client that stopped half-way, or
//     went quiet after a flight that all arrived, is a timeout or a reset;
//     connected and silent is no_clienthello;
//   - at the end of a capture (Flush, or a jump of its clock: see
//     maxClockGap): with a loss as above, else timeout with CaptureEnded.
//
// A HelloRetryRequest does not count as the ServerHello: the handshake
// goes on with the client's second hello.
type Tracker struct {
	cfg     Config
	timeout int64
	ports   [1024]uint64 // bitmap of watched ports, empty when any port
	anyPort bool

	// table finds a flow by endpointsHash of its endpoints: the first
	// slot of a chain linked by flow.hnext. nOpen counts the flows in it.
	table map[uint64]int32
	nOpen int
	seed  uint64
	// chunks hold the flows, n slots in all: allocated a chunk at a time
	// as the table grows, never moved, reused through free.
	chunks []*[chunk]flow
	n      int32
	free   []int32
	lists  [4]list // half-open, active, done, unverified
	// bufs are hello buffers free for reuse; bufsOut are in flows, at
	// most maxBufs.
	bufs    [][]byte
	bufsOut int
	maxBufs int
	// scratch holds a hello that spans several records while it is parsed.
	scratch []byte
	learned map[netip.AddrPort]struct{}
	names   map[string]string
	summary tlswire.HelloSummary

	now      int64
	stats    Stats
	outcomes [len(outcomes)]uint64

	// obs is Config.Observer; seg and conn are what it is handed.
	obs    Observer
	seg    Segment
	conn   Conn
	linger int64
}

// NewTracker returns a Tracker for cfg, with defaults filled in.
func NewTracker(cfg Config) *Tracker {
	if cfg.MaxFlows <= 0 {
		cfg.MaxFlows = DefaultMaxFlows
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.MaxBuffer <= 0 {
		cfg.MaxBuffer = DefaultMaxBuffer
	}
	if cfg.Linger <= 0 {
		cfg.Linger = cfg.HandshakeTimeout
	}
	t := &Tracker{
		cfg:     cfg,
		obs:     cfg.Observer,
		timeout: int64(cfg.HandshakeTimeout),
		linger:  int64(cfg.Linger),
		anyPort: len(cfg.Ports) == 0,
		maxBufs: max(64, cfg.MaxFlows/8),
		table:   make(map[uint64]int32, min(cfg.MaxFlows, 4096)),
		seed:    rand.Uint64(),
		learned: make(map[netip.AddrPort]struct{}),
		names:   make(map[string]string),
	}
	for _, p := range cfg.Ports {
		t.ports[p/64] |= 1 << (p % 64)
	}
	for i := range t.lists {
		t.lists[i] = list{head: -1, tail: -1}
	}
	t.stats.Max = cfg.MaxFlows
	return t
}

func (t *Tracker) watched(port uint16) bool {
	return t.anyPort || t.ports[port/64]&(1<<(port%64)) != 0
}

// Stats returns the counters so far.
func (t *Tracker) Stats() Stats {
	s := t.stats
	s.Open = t.nOpen
	s.Handshakes = make(map[diagnose.Outcome]uint64, len(outcomes))
	for i, n := range t.outcomes {
		if n > 0 {
			s.Handshakes[outcomes[i]] = n
		}
	}
	return s
}

// Packet feeds one decoded packet captured at ts. Packets should come in
// capture order; the tracker's clock is the latest timestamp seen.
func (t *Tracker) Packet(p *packet.Packet, ts time.Time) {
	t.stats.Packets++
	now := ts.UnixNano()
	if t.now != 0 && (now-t.now > int64(maxClockGap) || t.now-now > t.timeout) {
		t.Flush(time.Unix(0, t.now))
		t.now = now
	}
	if now > t.now {
		t.now = now
		t.advance(now)
	}
	if p.Frag.Is && (!p.Transport || p.Proto != packet.ProtoTCP) {
		t.stats.Fragments++
		t.stats.Ignored++
		return
	}
	switch {
	case !p.Transport:
		t.stats.Ignored++
	case p.Proto == packet.ProtoTCP:
		t.tcp(p, now)
	case p.TooBig():
		t.tooBig(p)
	default:
		t.stats.Ignored++
	}
}

// Advance expires, at packet time now, the handshakes open longer than the
// timeout and forgets flows idle that long. Live capture calls it when no
// packet came for a while; Packet calls it itself.
func (t *Tracker) Advance(now time.Time) {
	n := now.UnixNano()
	if n > t.now {
		t.now = n
	}
	t.advance(n)
}

func (t *Tracker) advance(now int64) {
	for h := t.lists[listHalf].head; h >= 0; h = t.lists[listHalf].head {
		if t.at(h).start+t.timeout > now {
			break
		}
		t.stats.HalfOpen++
		t.release(h)
	}
	for _, l := range [...]uint8{listActive, listLoose} {
		for h := t.lists[l].head; h >= 0; h = t.lists[l].head {
			if t.at(h).start+t.timeout > now {
				break
			}
			t.finish(h, endTimeout, now)
		}
	}
	for h := t.lists[listDone].head; h >= 0; h = t.lists[listDone].head {
		if t.at(h).last+t.linger > now {
			break
		}
		t.release(h)
	}
}

// Flush finishes every open handshake at the end of a capture: those
// showing a loss are classified as they stand, the others as cut short
// (timeout, Handshake.CaptureEnded). The end of a capture is no evidence:
// time after the last packet is not time the handshake was seen to wait,
// so now (the caller's idea of the end) counts only when no packet came.
// The table is empty afterwards.
func (t *Tracker) Flush(now time.Time) {
	n := t.now
	if n == 0 {
		n = now.UnixNano()
	}
	for _, l := range [...]uint8{listActive, listLoose} {
		for h := t.lists[l].head; h >= 0; h = t.lists[l].head {
			t.finish(h, endFlush, n)
		}
	}
	for h := t.lists[listHalf].head; h >= 0; h = t.lists[listHalf].head {
		t.stats.HalfOpen++
		t.release(h)
	}
	for h := t.lists[listDone].head; h >= 0; h = t.lists[listDone].head {
		t.release(h)
	}
}

// EndpointsHash is a flow table's key for a pair of endpoints, the same
// either way round: a uint64, which a map hashes on its fast path. An
// address counts as As16 sees it (an IPv4 address and its IPv4-mapped
// IPv6 form alike, zones ignored), as SameEndpoint does. The table's
// random seed goes in before the mixing, so that no one can pick
// endpoints whose keys collide (the chains would grow). The tracker and
// the analyzer's table both key their flows with it.
func EndpointsHash(seed uint64, a, b netip.AddrPort) uint64 {
	return endpointHash(seed, a) + endpointHash(seed, b)
}

func endpointHash(seed uint64, e netip.AddrPort) uint64 {
	a := e.Addr().Unmap()
	h := seed ^ uint64(e.Port())
	if a.Is4() {
		b := a.As4()
		return mix64(h ^ uint64(binary.BigEndian.Uint32(b[:]))<<16)
	}
	b := a.As16()
	return mix64(mix64(h^binary.BigEndian.Uint64(b[:8])) ^ binary.BigEndian.Uint64(b[8:]))
}

// mix64 is splitmix64's finaliser.
func mix64(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// SameEndpoint reports whether two endpoints are equal as As16 sees them.
func SameEndpoint(a, b netip.AddrPort) bool {
	if a == b {
		return true
	}
	return a.Port() == b.Port() && a.Addr().As16() == b.Addr().As16()
}

// firstEndpoint reports whether src orders before dst (or equals it): the
// smaller endpoint of a connection, whichever way a packet goes.
func firstEndpoint(src, dst netip.AddrPort) bool {
	s, d := src.Addr().As16(), dst.Addr().As16()
	c := bytes.Compare(s[:], d[:])
	return c < 0 || c == 0 && src.Port() <= dst.Port()
}

// side returns the side of the flow that sent a packet from src to dst.
func (f *flow) side(src, dst netip.AddrPort) int {
	if !SameEndpoint(src, dst) {
		if SameEndpoint(src, f.client) {
			return sideUp
		}
		return sideDown
	}
	// Both ends alike: the side the flow was opened from.
	if f.clientIsA {
		return sideUp
	}
	return sideDown
}

// lookup returns the slot of the flow between endpoints a and b.
func (t *Tracker) lookup(h uint64, a, b netip.AddrPort) (int32, bool) {
	i, ok := t.table[h]
	for ok && i >= 0 {
		f := t.at(i)
		if SameEndpoint(f.client, a) && SameEndpoint(f.server, b) || SameEndpoint(f.client, b) && SameEndpoint(f.server, a) {
			return i, true
		}
		i = f.hnext
	}
	return -1, false
}

// Lists of flows, by state.
const (
	listHalf   = iota // SYN seen, connection not open: ordered by start
	listActive        // handshake under way: ordered by start
	listDone          // handshake emitted (or dropped): ordered by last packet
	listLoose         // handshake under way, not verified: ordered by start
	listNone   = 255
)

type list struct{ head, tail int32 }

func (t *Tracker) push(l uint8, i int32) {
	f := t.at(i)
	ls := &t.lists[l]
	f.list, f.prev, f.next = l, ls.tail, -1
	if ls.tail >= 0 {
		t.at(ls.tail).next = i
	} else {
		ls.head = i
	}
	ls.tail = i
}

func (t *Tracker) unlink(i int32) {
	f := t.at(i)
	if f.list == listNone {
		return
	}
	ls := &t.lists[f.list]
	if f.prev >= 0 {
		t.at(f.prev).next = f.next
	} else {
		ls.head = f.next
	}
	if f.next >= 0 {
		t.at(f.next).prev = f.prev
	} else {
		ls.tail = f.prev
	}
	f.list, f.prev, f.next = listNone, -1, -1
}

func (t *Tracker) move(i int32, l uint8) {
	t.unlink(i)
	t.push(l, i)
}

// alloc returns a cleared flow slot, evicting when the table is full, or
// -1 when nothing can be evicted.
func (t *Tracker) alloc(h uint64, now int64) int32 {
	if t.nOpen >= t.cfg.MaxFlows {
		switch {
		case t.lists[listDone].head >= 0:
			t.release(t.lists[listDone].head)
		case t.lists[listLoose].head >= 0:
			t.stats.Evicted++
			t.release(t.lists[listLoose].head)
		case t.lists[listHalf].head >= 0:
			t.stats.Evicted++
			t.stats.HalfOpen++
			t.release(t.lists[listHalf].head)
		case t.lists[listActive].head >= 0:
			t.stats.Evicted++
			t.release(t.lists[listActive].head)
		default:
			return -1
		}
	}
	var i int32
	if n := len(t.free); n > 0 {
		i = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		if t.n%chunk == 0 {
			t.chunks = append(t.chunks, new([chunk]flow))
		}
		i = t.n
		t.n++
	}
	f := t.at(i)
	f.reset()
	f.hash, f.first, f.start, f.last = h, now, now, now
	if head, ok := t.table[h]; ok {
		f.hnext = head
	}
	t.table[h] = i
	t.nOpen++
	return i
}

// release forgets a flow and returns its slot and buffer.
func (t *Tracker) release(i int32) {
	t.unlink(i)
	f := t.at(i)
	if t.obs != nil {
		t.obs.Close(f.oh)
	}
	t.putBuf(f)
	t.unhash(i, f)
	t.free = append(t.free, i)
}

// unhash takes flow slot i out of the table.
func (t *Tracker) unhash(i int32, f *flow) {
	head := t.table[f.hash]
	switch {
	case head == i && f.hnext < 0:
		delete(t.table, f.hash)
	case head == i:
		t.table[f.hash] = f.hnext
	default:
		for x := t.at(head); x.hnext >= 0; x = t.at(x.hnext) {
			if x.hnext == i {
				x.hnext = f.hnext
				break
			}
		}
	}
	f.hash, f.hnext = 0, -1
	t.nOpen--
}

// getBuf returns a hello buffer, or nil when maxBufs are out already.
func (t *Tracker) getBuf() []byte {
	if t.bufsOut >= t.maxBufs {
		t.stats.HelloUnparsed++
		return nil
	}
	t.bufsOut++
	if n := len(t.bufs); n > 0 {
		b := t.bufs[n-1]
		t.bufs = t.bufs[:n-1]
		return b
	}
	return make([]byte, t.cfg.MaxBuffer)
}

func (t *Tracker) putBuf(f *flow) {
	if f.hello.buf != nil {
		t.bufs = append(t.bufs, f.hello.buf)
		f.hello.buf = nil
		t.bufsOut--
	}
}

// learn remembers a server endpoint that received a ClientHello.
func (t *Tracker) learn(server netip.AddrPort) {
	if !t.anyPort {
		return
	}
	if _, ok := t.learned[server]; ok || len(t.learned) >= maxLearned {
		return
	}
	t.learned[server] = struct{}{}
}

// tooBig counts an ICMP too-big against the flow whose packet it quotes.
func (t *Tracker) tooBig(p *packet.Packet) {
	t.stats.TooBig++
	q := &p.ICMP.Quote
	if !q.Valid || !q.Ports || q.Proto != packet.ProtoTCP {
		return
	}
	src, dst := netip.AddrPortFrom(q.Src, q.SrcPort), netip.AddrPortFrom(q.Dst, q.DstPort)
	i, ok := t.lookup(EndpointsHash(t.seed, src, dst), src, dst)
	if !ok {
		return
	}
	t.stats.TooBigMatched++
	f := t.at(i)
	f.tooBig++
	if p.ICMP.MTU > 0 && (f.tooBigMTU == 0 || p.ICMP.MTU < f.tooBigMTU) {
		f.tooBigMTU = p.ICMP.MTU
	}
	side := f.side(src, dst)
	if d := &f.d[side]; p.ICMP.MTU > 0 && (d.pmtu == 0 || p.ICMP.MTU < d.pmtu) {
		d.pmtu = p.ICMP.MTU
	}
	if t.obs != nil {
		t.obs.TooBig(f.oh, side, p)
	}
}

// chunk is how many flow slots are allocated at once.
const chunk = 1024

// at returns flow slot i.
func (t *Tracker) at(i int32) *flow { return &t.chunks[i/chunk][i%chunk] }
