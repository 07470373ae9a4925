package server

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/mtuscope/mtuscope/api"
	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/sockopt"
)

// The refinement round makes the page exact to the byte. The first round's
// rungs are Step bytes apart; once they bracket a direction's boundary
// (largest size passed, smallest lost), the server lends the session, for
// its lease only, a few ports from the refinement pool:
//
//   - upstream: one HTTPS listener per size inside the bracket, clamped to
//     that size (TCP_MAXSEG), where the page repeats the hello step: the
//     ClientHello's first segment is exactly that size;
//   - downstream: one unclamped server-first listener. When the page
//     connects, the server writes a TLS record header (so that the browser
//     waits for the rest of the record instead of closing) and then one
//     write per size inside the bracket, smallest first, with TCP_NODELAY
//     and fewer segments than the initial window: one write is one
//     segment of exactly that size. The cumulative bytes_acked of TCP_INFO
//     then says how many of them arrived, since every size up to the path
//     MTU passes and the first larger one stops the acknowledgements.
//
// The ports belong to the session alone, so their connections are its own
// whatever address they come from; the join still takes only those from
// the session's address.

// refinement is one session's borrowed listeners and the round the page
// was told to test on them.
type refinement struct {
	round  api.Refinement
	mss    map[int]bool // refinement MSS values, by family*100000+mss
	lns    []net.Listener
	leases []*portLease
	once   sync.Once
}

func refineKey(fam, mss int) int { return fam*100000 + mss }

// sizeBracket returns the largest passing and smallest failing size above it
// in one direction of the segments, as diagnose reads them.
func sizeBracket(ts []diagnose.SegmentTest, up bool) [2]int {
	var b [2]int
	for _, t := range ts {
		r, size := t.Down, t.DownSize
		if up {
			r, size = t.Up, t.UpSize
		}
		if r == diagnose.Passed && size > b[0] {
			b[0] = size
		}
	}
	for _, t := range ts {
		r, size := t.Down, t.DownSize
		if up {
			r, size = t.Up, t.UpSize
		}
		if r == diagnose.Failed && size > b[0] && (b[1] == 0 || size < b[1]) {
			b[1] = size
		}
	}
	return b
}

// seenBracket reports whether the server saw the first round that found a
// direction's bracket b (when want): at the size that passed a
// handshake completed, and at the size lost a connection arrived. A page
// result alone, claiming sizes without connections, lends no ports.
func seenBracket(fr familyJoin, b [2]int, up, want bool) bool {
	if !want {
		return true
	}
	passed, lost := false, false
	for _, r := range fr.Rungs {
		res, size := r.Test.Down, r.Test.DownSize
		if up {
			res, size = r.Test.Up, r.Test.UpSize
		}
		switch {
		case size == b[0] && res == diagnose.Passed:
			for _, sn := range r.Server {
				passed = passed || sn.HandshakeDone
			}
		case size == b[1] && res == diagnose.Failed:
			lost = lost || len(r.Server) > 0
		}
	}
	return passed && lost
}

// maxRefineSizes bounds the sizes of one direction's round (below the
// initial congestion window of ten segments, with the record header).
const maxRefineSizes = 8

func inside(b [2]int, rungSizes map[int]bool) []int {
	var out []int
	if b[0] == 0 || b[1] == 0 {
		return nil
	}
	for size := b[0] + 1; size < b[1] && len(out) < maxRefineSizes; size++ {
		if !rungSizes[size] {
			out = append(out, size)
		}
	}
	return out
}

// refineSession answers the page's first-round results with the second
// round: the sizes inside each bracket and the ports to test them on.
func (s *Server) refineSession(w http.ResponseWriter, r *http.Request) {
	sess := s.ownSession(w, r)
	if sess == nil {
		return
	}
	var res api.PageResult
	if err := decodeJSON(w, r, maxJSONBody, &res); err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.validResult(&res, nil); err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !sess.holding(time.Now()) {
		httpError(w, http.StatusConflict, "this session is not testing (its turn ended or has not come)")
		return
	}
	sess.mu.Lock()
	if sess.refine != nil {
		out := sess.refine
		sess.mu.Unlock()
		writeJSON(w, http.StatusOK, out.round)
		return
	}
	sess.mu.Unlock()
	arrived := time.Now()
	ref := &refinement{round: api.Refinement{Families: []api.RefineFamily{}, WaitMs: 600 + 4*max(0, int(res.RTTms))}, mss: map[int]bool{}}
	if s.cfg.Rungs.RefinePorts > 0 && len(s.cfg.Rungs.Addresses) == 0 {
		sp, seen := s.joinInput(sess)
		for _, f := range joinFamilies(sp, res, selectConns(sp, seen)) {
			s.planRefine(r.Context(), sess, f, ref)
		}
	}
	sess.mu.Lock()
	if won := sess.refine; won != nil { // a concurrent request won
		sess.mu.Unlock()
		ref.close(s)
		writeJSON(w, http.StatusOK, won.round)
		return
	}
	sess.refine = ref
	started := sess.started
	sess.mu.Unlock()
	s.log.Debug("refinement round", "session", sess.ID, "since_start", time.Since(started), "planned_in", time.Since(arrived), "families", len(ref.round.Families))
	time.AfterFunc(leaseMax, func() { ref.close(s) })
	writeJSON(w, http.StatusOK, ref.round)
}

// planRefine binds the listeners of one family's round.
func (s *Server) planRefine(ctx context.Context, sess *session, fr familyJoin, ref *refinement) {
	hdr := diagnose.IPHeader(fr.Family)
	rungSizes := map[int]bool{}
	for _, rg := range s.rungs {
		rungSizes[rg.MSS+hdr] = true
	}
	rf := api.RefineFamily{Family: fr.Family, Up: sizeBracket(fr.Evidence.Segments, true), Down: sizeBracket(fr.Evidence.Segments, false)}
	up, down := inside(rf.Up, rungSizes), inside(rf.Down, rungSizes)
	need := len(up)
	if len(down) > 0 {
		need++
	}
	if need == 0 {
		return
	}
	if !seenBracket(fr, rf.Up, true, len(up) > 0) || !seenBracket(fr, rf.Down, false, len(down) > 0) {
		s.log.Debug("refinement refused: the server did not see the bracket's connections", "session", sess.ID)
		return
	}
	lease := s.refinePool.take(sess.IP, need)
	if lease == nil {
		s.log.Info("refinement pool: no ports for this address", "session", sess.ID)
		return
	}
	ref.leases = append(ref.leases, lease)
	ports := lease.Ports
	host, _, _ := net.SplitHostPort(s.cfg.HTTPS)
	for i, size := range up {
		mss := size - hdr
		ln, err := s.listen(ctx, net.JoinHostPort(host, strconv.Itoa(ports[i])), mss, kindRung)
		if err != nil {
			s.log.Info("refinement listener", "err", err)
			continue
		}
		ref.lns = append(ref.lns, ln)
		rf.Rungs = append(rf.Rungs, rung{MSS: mss, Port: ln.Addr().(*net.TCPAddr).Port})
		ref.mss[refineKey(fr.Family, mss)] = true
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.refineSrv.Serve(&mixedListener{Listener: ln, conf: s.rungTLS}) }()
	}
	if len(down) > 0 {
		dl, err := s.listen(ctx, net.JoinHostPort(host, strconv.Itoa(ports[len(up)])), 0, kindExact)
		if err == nil {
			dl.onAccept = func(c *evConn) { s.exactProbe(c, sess, fr.Family, down) }
			ref.lns = append(ref.lns, dl)
			rf.ExactPort, rf.ExactSizes = dl.Addr().(*net.TCPAddr).Port, down
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				// Closed by the refinement's end or, sooner, by Shutdown.
				unwatch := context.AfterFunc(s.stopped, func() { dl.Close() })
				defer unwatch()
				dl.Accept()
			}()
		} else {
			s.log.Info("refinement listener", "err", err)
		}
	}
	ref.round.Families = append(ref.round.Families, rf)
}

// close gives the listeners and ports back; connections in progress end
// on their own deadlines.
func (ref *refinement) close(s *Server) {
	ref.once.Do(func() {
		for _, ln := range ref.lns {
			ln.Close()
		}
		for _, l := range ref.leases {
			s.refinePool.put(l)
		}
	})
}

// exactRecordHeader starts a TLS handshake record of the largest size, so
// that a browser reading the probe waits for the rest of it.
var exactRecordHeader = []byte{22, 3, 3, 0x3f, 0xff}

// exactProbe writes one segment per size, smallest first, on a connection
// from the session's address, then holds it until the client closes or
// the deadline passes; Close keeps the final TCP_INFO.
func (s *Server) exactProbe(c *evConn, sess *session, fam int, sizes []int) {
	defer c.Close()
	if addrKey(c.rec.Client.Addr()) != addrKey(sess.IP) && familyOf(c.rec.Client.Addr()) == sess.Family {
		return
	}
	ti, err := sockopt.ReadTCPInfo(c.rec.raw)
	if err != nil || ti.SndMSS <= 0 {
		return
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	hdr, opt := diagnose.IPHeader(fam), ti.OptionBytes()
	first := make([]byte, 64)
	copy(first, exactRecordHeader)
	n, err := c.Conn.Write(first)
	var ends []int64
	var written []int
	total := int64(n)
	for _, size := range sizes {
		payload := size - hdr - opt
		if err != nil || payload > ti.SndMSS || payload <= 0 {
			break
		}
		n, err = c.Conn.Write(make([]byte, payload))
		total += int64(n)
		if n == payload {
			written = append(written, size)
			ends = append(ends, total)
		}
	}
	c.rec.mu.Lock()
	c.rec.downWritten = len(first)
	c.rec.exactSizes, c.rec.exactEnds = written, ends
	c.rec.mu.Unlock()
	io.Copy(io.Discard, io.LimitReader(c.Conn, 64<<10))
}

// exactTests reads an exact-size probe: every size whose end was
// acknowledged passed; the others were lost, provided the connection
// worked at all (its first small segment was acknowledged).
func exactTests(fam int, snaps []snapshot) []RungResult {
	var out []RungResult
	for _, sn := range snaps {
		if !sn.Info.Valid || sn.Info.BytesAcked < int64(sn.DownWritten) || len(sn.ExactSizes) == 0 {
			continue
		}
		hdr := diagnose.IPHeader(fam)
		for i, size := range sn.ExactSizes {
			t := diagnose.SegmentTest{UpSize: size, DownSize: size, Up: diagnose.Untested, Down: diagnose.Failed,
				Outcome: diagnose.Timeout, Detail: "an exact-size segment from the server"}
			if sn.Info.BytesAcked >= sn.ExactEnds[i] {
				t.Down, t.Outcome = diagnose.Passed, diagnose.Completed
			}
			out = append(out, RungResult{MSS: size - hdr, Test: t, Server: nil})
		}
		out[len(out)-1].Server = []snapshot{sn}
		break // the page opens one; a second is a retry of the same
	}
	return out
}
