package flow

import (
	"github.com/mtuscope/mtuscope/tlswire"
)

// v2Len is the size of an SSLv2 record with a two-byte header.
func v2Len(b []byte) uint32 { return 2 + (uint32(b[0]&0x7f)<<8 | uint32(b[1])) }

// Bounds of the plaintext before a ClientHello (STARTTLS and the like):
// past them, a connection is not TLS.
const (
	maxPlainClient = 4096  // client bytes before its hello
	maxPlainServer = 16384 // server bytes before the hello
)

// helloState reassembles the ClientHello from the first bytes the client
// sent, in a buffer of Config.MaxBuffer bytes taken from the tracker's pool
// and given back once the hello is parsed.
type helloState struct {
	buf  []byte
	cov  [8]Span
	ncov uint8
	// base is where the hello starts in the client's stream: 0, or past
	// the plaintext of a STARTTLS exchange. end is where its records end
	// (headers included), 0 until the record header was seen.
	base, end uint32
	// v2 says the hello is in SSLv2 format.
	v2 bool
	// parsed says the hello was parsed; failed that it cannot be (too
	// large for the buffer, cut by the snap length, malformed).
	parsed, failed bool
	truncated      bool
	sni            string
	// What the hello carried (see Handshake.PQKeyShare, PQOffered, MLDSA
	// and HelloRead).
	pq, pqGroup, mldsa bool
	read               uint8
}

// prefix returns how many bytes from the start of the buffer are held.
func (h *helloState) prefix() uint32 {
	if h.ncov == 0 || h.cov[0].Start != 0 {
		return 0
	}
	return h.cov[0].End
}

// add records that [s, e) is now in the buffer, merging ranges.
func (h *helloState) add(s, e uint32) {
	if e <= s {
		return
	}
	n := int(h.ncov)
	at := 0
	for at < n && h.cov[at].Start < s {
		at++
	}
	if n == len(h.cov) {
		return // too scattered: a hello does not come in 8 pieces out of order
	}
	copy(h.cov[at+1:n+1], h.cov[at:n])
	h.cov[at] = Span{s, e}
	n++
	// Merge overlapping or touching neighbours.
	out := 0
	for i := 1; i < n; i++ {
		if h.cov[i].Start <= h.cov[out].End {
			h.cov[out].End = max(h.cov[out].End, h.cov[i].End)
			continue
		}
		out++
		h.cov[out] = h.cov[i]
	}
	h.ncov = uint8(out + 1)
}

// clientData handles the client's bytes at relative offset s: plaintext
// before a hello, the hello while it is reassembled, the records after it.
func (t *Tracker) clientData(i int32, f *flow, s uint32, data []byte, n int) {
	h := &f.hello
	if len(data) < n {
		h.truncated = true
	}
	if h.end == 0 && f.plain && !t.upgrade(i, f, s, data, n) {
		return
	}
	if !h.parsed && !h.failed && int32(s-h.base) >= 0 {
		t.helloBytes(i, f, s-h.base, data)
		if f.done || h.end == 0 {
			return
		}
	}
	if h.end == 0 {
		return
	}
	w := &f.d[sideUp].w
	if !w.on {
		w.on, w.next = true, h.end
	}
	for {
		r, ok := w.record(s, data)
		if !ok {
			break
		}
		if r.bad {
			break
		}
		if r.typ == tlswire.RecordAlert {
			f.alert, f.alertBy, f.alertDesc, f.alertEnc = true, sideUp+1, r.b1, r.length != 2
			f.end = f.last
			t.finish(i, endAlert, f.last)
			return
		}
		if t.answered(i, f) {
			return
		}
	}
	if h.v2 && w.stuck && int32(s+uint32(n)-h.end) > 0 {
		// An SSLv2 exchange: its records are not followed; the client's
		// next message after the whole server flight is the answer.
		t.answered(i, f)
	}
}

// answered completes the handshake when the client, having acknowledged
// all the server sent after its ServerHello, sent a record of its own: it
// got the whole flight.
func (t *Tracker) answered(i int32, f *flow) bool {
	d := &f.d[sideDown]
	if !f.serverHello || !d.acked || int32(d.ack-d.end) < 0 {
		return false
	}
	f.completed = true
	f.end = f.last
	t.finish(i, endDone, f.last)
	return true
}

// upgrade looks for the ClientHello after plaintext, at the start of a
// client segment. It reports whether the segment at s starts the hello; a
// connection whose plaintext runs past the bounds is not TLS.
func (t *Tracker) upgrade(i int32, f *flow, s uint32, data []byte, n int) bool {
	h := &f.hello
	if tlswire.IsClientHelloStart(data) {
		// Whatever plaintext was held for a hello is not one.
		t.putBuf(f)
		h.base, h.ncov, h.failed = s, 0, false
		return true
	}
	if int32(s+uint32(n)) > maxPlainClient {
		t.notTLS(i, f)
	}
	return false
}

// notTLS ends a connection that is not TLS: dropped and counted when any
// port is watched, else classified not_tls.
func (t *Tracker) notTLS(i int32, f *flow) {
	t.putBuf(f)
	f.hello.failed = true
	if t.anyPort {
		t.stats.NotTLS++
		f.done = true
		t.release(i)
		return
	}
	f.notTLS = true
	f.end = f.last
	t.finish(i, endNotTLS, f.last)
}

// plaintext notes a side's first bytes that are not TLS: the connection
// may still upgrade (STARTTLS) until the bounds.
func (f *flow) plaintext(side int, b []byte) {
	f.plain = true
	if f.prefixN == 0 {
		f.prefixN = uint8(copy(f.prefix[:], b))
		f.notTLSBy = uint8(side + 1)
	}
}

// helloBytes copies the captured bytes at s (relative to the hello's
// start) into the hello buffer and parses the hello once it is whole.
func (t *Tracker) helloBytes(i int32, f *flow, s uint32, data []byte) {
	h := &f.hello
	max := uint32(t.cfg.MaxBuffer)
	if s >= max || len(data) == 0 {
		return
	}
	if h.buf == nil {
		if h.buf = t.getBuf(); h.buf == nil {
			// No buffer to spare: the first segment's header still gives
			// the hello's size.
			h.failed = true
			if s == 0 && tlswire.IsClientHelloStart(data) {
				h.end = h.base + helloRecordLen(data)
				h.v2 = tlswire.IsV2ClientHello(data)
				t.located(f)
			}
			return
		}
	}
	c := copy(h.buf[s:], data)
	h.add(s, s+uint32(c))
	pre := h.prefix()
	if h.end == 0 {
		if pre < 6 {
			return
		}
		if !tlswire.IsClientHelloStart(h.buf) {
			// Plaintext first: a STARTTLS exchange, or not TLS at all.
			f.plaintext(sideUp, h.buf[:pre])
			t.putBuf(f)
			h.ncov = 0
			return
		}
		if tlswire.IsV2ClientHello(h.buf) {
			// No extensions to read: its size is all there is.
			h.v2, h.parsed = true, true
			h.end = h.base + v2Len(h.buf)
			t.putBuf(f)
			t.located(f)
			return
		}
	}
	end, msg, ok := t.helloExtent(h.buf[:pre])
	if end > 0 && h.end == 0 {
		h.end = h.base + uint32(end)
		t.located(f)
	} else if end > 0 {
		h.end = h.base + uint32(end)
	}
	switch {
	case ok:
		if tlswire.ScanClientHello(msg, &t.summary) == nil {
			h.sni = t.intern(t.summary.ServerName)
			h.features(&t.summary)
		}
		h.parsed = true
		t.putBuf(f)
	case h.end-h.base > max || h.truncated:
		// Too large to keep, or cut by the snap length: its size is known.
		h.failed = true
		t.putBuf(f)
	}
}

// helloRecordLen is the size of the record a hello starts with, header
// included.
func helloRecordLen(b []byte) uint32 {
	if tlswire.IsV2ClientHello(b) {
		return v2Len(b)
	}
	return 5 + (uint32(b[3])<<8 | uint32(b[4]))
}

// located notes that the hello's start is known: the server's answer is
// what it sends from here (after any plaintext of its own).
func (t *Tracker) located(f *flow) {
	t.learn(f.server)
	d := &f.d[sideDown]
	if !d.w.on {
		d.plain = d.end
		d.w = walker{on: true, next: d.end, keep: serverKeep}
	}
}

// features notes what a scanned hello carried.
func (h *helloState) features(s *tlswire.HelloSummary) {
	h.pq, h.pqGroup, h.mldsa, h.read = s.PQShare(), s.PQGroup, s.MLDSA, s.Read
}

// scanPrefix reads what the first bytes of a hello that never arrived
// whole say about it (a device that drops a hello's second segment
// leaves the server its first): the key-share groups, supported_groups
// and signature_algorithms held in the first record.
func (t *Tracker) scanPrefix(f *flow) {
	h := &f.hello
	pre := h.prefix()
	if h.parsed || h.v2 || h.buf == nil || pre < 9 || !tlswire.IsClientHelloStart(h.buf) {
		return
	}
	rec := min(pre, helloRecordLen(h.buf))
	if tlswire.ScanClientHelloPrefix(h.buf[5:rec], &t.summary) == nil {
		if h.sni == "" && t.summary.ServerName != nil {
			h.sni = t.intern(t.summary.ServerName)
		}
		h.features(&t.summary)
	}
}

// helloExtent walks the records that carry the ClientHello in b (the
// stream's first bytes held): end is where they end, once their headers
// are known; msg is the whole handshake message once b holds it.
func (t *Tracker) helloExtent(b []byte) (end int, msg []byte, ok bool) {
	if len(b) < 9 {
		return 0, nil, false
	}
	l := int(b[3])<<8 | int(b[4])
	need := 4 + (int(b[6])<<16 | int(b[7])<<8 | int(b[8]))
	if need <= l {
		end = 5 + l
		if len(b) < end {
			return end, nil, false
		}
		return end, b[5 : 5+need], true
	}
	// The message spans records: gather their bodies.
	if cap(t.scratch) < t.cfg.MaxBuffer {
		t.scratch = make([]byte, 0, t.cfg.MaxBuffer)
	}
	m := t.scratch[:0]
	pos := 0
	for got := 0; got < need; {
		if pos+5 > len(b) {
			return 0, nil, false
		}
		rh, isRec := tlswire.RecordStart(b[pos:])
		if !isRec || rh.Type != tlswire.RecordHandshake {
			return 0, nil, false
		}
		rl := rh.Length
		if rl == 0 {
			return 0, nil, false
		}
		if pos+5+rl > len(b) {
			return pos + 5 + rl, nil, false
		}
		m = append(m, b[pos+5:pos+5+rl]...)
		got += rl
		pos += 5 + rl
	}
	return pos, m[:need], true
}

// serverData handles the server's bytes at relative offset s: its first
// records after the hello say ServerHello (or HelloRetryRequest), alert,
// or not TLS; before any hello they are plaintext.
func (t *Tracker) serverData(i int32, f *flow, s uint32, data []byte) {
	w := &f.d[sideDown].w
	if !w.on {
		if f.hello.end == 0 {
			// Before any hello: a server that speaks first, or answers
			// plaintext (STARTTLS).
			f.plaintext(sideDown, data)
			if f.d[sideDown].end > maxPlainServer {
				t.notTLS(i, f)
			}
			return
		}
		*w = walker{on: true, keep: serverKeep}
	}
	for {
		r, ok := w.record(s, data)
		if !ok {
			return
		}
		first := w.records == 1
		switch {
		case r.bad && first && f.hello.v2 && isV2ServerHello(data[min(int(r.start-s), len(data)):]):
			// An SSLv2 SERVER-HELLO: its records are not followed.
			f.serverHello = true
			return
		case r.bad && first:
			f.notTLS, f.notTLSBy = true, sideDown+1
			f.prefixN = uint8(copy(f.prefix[:], data[min(int(r.start-s), len(data)):]))
			f.end = f.last
			t.finish(i, endNotTLS, f.last)
			return
		case r.bad:
			return
		case r.typ == tlswire.RecordAlert:
			f.alert, f.alertBy, f.alertDesc, f.alertEnc = true, sideDown+1, r.b1, r.length != 2
			f.end = f.last
			t.finish(i, endAlert, f.last)
			return
		case r.typ == tlswire.RecordHandshake && r.b0 == tlswire.TypeServerHello && (first || f.hrr) && !f.serverHello:
			// A HelloRetryRequest asks for a second hello: the
			// ServerHello that counts comes after it.
			if r.hrr {
				f.hrr = true
			} else {
				f.serverHello = true
			}
		}
	}
}

// isV2ServerHello reports whether b starts with an SSLv2 SERVER-HELLO.
func isV2ServerHello(b []byte) bool {
	return len(b) >= 3 && b[0]&0x80 != 0 && b[2] == 4
}

// walker follows the record headers of one direction's stream from the
// bytes that come past, without keeping them: it needs only the five
// header bytes and the first keep (default 2) of each record's body.
type walker struct {
	on      bool
	stuck   bool
	keep    uint8
	next    uint32 // relative offset of the next record's header
	hb      [5 + serverKeep]byte
	hn      uint8
	length  int
	records int
}

// serverKeep is the body bytes the server's walker reads of each record:
// a ServerHello's type, length, version and random, which tells a
// HelloRetryRequest.
const serverKeep = 38

// rec is a record whose header (and first body bytes) the walker read.
type rec struct {
	start  uint32
	typ    uint8
	length int
	b0, b1 uint8
	bad    bool
	// hrr says the record is a HelloRetryRequest (server walker only).
	hrr bool
}

// record returns the next record whose start lies in the bytes data at
// relative offset off, and false when data holds no more.
func (w *walker) record(off uint32, data []byte) (rec, bool) {
	keep := max(w.keep, 2)
	for !w.stuck {
		pos := w.next + uint32(w.hn)
		i := pos - off
		if int32(i) < 0 || i >= uint32(len(data)) {
			return rec{}, false
		}
		need := uint8(5)
		if w.hn >= 5 {
			need = 5 + uint8(min(w.length, int(keep)))
		}
		c := copy(w.hb[w.hn:need], data[i:])
		w.hn += uint8(c)
		if w.hn == 5 && need == 5 {
			hdr, ok := tlswire.RecordStart(w.hb[:5])
			if !ok {
				w.stuck = true
				w.records++
				return rec{start: w.next, bad: true}, true
			}
			w.length = hdr.Length
		}
		if w.hn < 5 || w.hn < 5+uint8(min(w.length, int(keep))) {
			continue
		}
		r := rec{start: w.next, typ: w.hb[0], length: w.length, b0: w.hb[5], b1: w.hb[6]}
		if r.typ == tlswire.RecordHandshake && r.b0 == tlswire.TypeServerHello && w.length >= serverKeep && keep >= serverKeep {
			r.hrr = tlswire.IsHelloRetryRandom(w.hb[5+6 : 5+serverKeep])
		}
		if w.length < 2 {
			r.b1 = 0
		}
		if w.length < 1 {
			r.b0 = 0
		}
		w.next += 5 + uint32(w.length)
		w.hn, w.length = 0, 0
		w.hb = [5 + serverKeep]byte{}
		w.records++
		return r, true
	}
	return rec{}, false
}

// maxNames bounds the server names interned.
const maxNames = 4096

// intern returns b as a string, without allocating for a name seen
// before (servers answer to few names; the map is bounded).
func (t *Tracker) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if s, ok := t.names[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(t.names) < maxNames {
		t.names[s] = s
	}
	return s
}
