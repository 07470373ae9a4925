package probe

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/tlswire"
)

// attempt is one handshake to run in a round.
type attempt struct {
	kind string
	mss  int
	spec tlswire.HelloSpec
}

// ladders runs the downstream ladder (small hellos), the upstream ladder
// (hellos larger than a segment) and the ClientHello sweep together, in
// rounds of parallel handshakes, until each has its answer. afterFirst is
// called once the first round, the largest, is done. It returns why a
// ladder ended without its answer and without a confirmed loss ("" when
// both have one, or when the run's time ran out with nothing retried,
// which the evidence says already): what it measured then proves no size.
func (r *runner) ladders(ctx context.Context, floor, hi int, small tlswire.HelloSpec, afterFirst func()) (unfinished string) {
	var pl []int
	for _, p := range plateaus {
		pl = append(pl, p-diagnose.IPHeader(r.family))
	}
	down := newLadder(floor, hi, pl, 14, 20)
	up := newLadder(floor, hi, pl, 14, 20)
	// The large hello is the small one padded to exceed one segment at
	// every rung: classical, so that a device refusing post-quantum key
	// shares (the variants' question) does not pass for a size limit.
	large := tlswire.HelloSpec{ServerName: r.serverName, ALPN: small.ALPN, Size: min(hi+400, tlswire.MaxHelloSize)}
	if nat, err := tlswire.NaturalSize(large); err == nil && large.Size < nat+4 {
		large.Size = 0
	}
	// The sweep runs at a safe MSS: a 1280-byte packet, the IPv6 minimum.
	sweepMSS := min(1280-diagnose.IPHeader(r.family), hi)
	sweepTries := map[int]int{}
	sweepPassed := map[int]bool{}
	nat := small.Size
	if nat == 0 {
		nat, _ = tlswire.NaturalSize(small)
	}

	retried := 0
	defer func() {
		if ctx.Err() != nil && retried == 0 {
			return // the run's time limit, nothing else: the evidence says so
		}
		for _, l := range []*ladder{down, up} {
			if _, f, confirmed := l.bracket(); !l.done() && !(f > 0 && confirmed) {
				unfinished = fmt.Sprintf("The size search ended without an answer after %d rounds (%d attempts retried "+
					"because the server or this host answered too slowly; the handshake timeout grew to %.1f s)",
					l.rounds, retried, r.hsTimeout.Seconds())
				if r.budget.Load() >= MaxConnections {
					unfinished += fmt.Sprintf("; the run's connection budget (%d) was spent", MaxConnections)
				}
				return
			}
		}
	}()
	for round := 1; ctx.Err() == nil; round++ {
		var batch []attempt
		for _, m := range down.next() {
			batch = append(batch, attempt{KindSmall, m, small})
		}
		for _, m := range up.next() {
			batch = append(batch, attempt{KindLarge, m, large})
		}
		for _, s := range sweepSizes {
			size := s
			if size < nat+4 {
				size = nat
			}
			if sweepPassed[size] || sweepTries[size] >= 2 || (round > 1 && sweepTries[size] == 0) {
				continue
			}
			sweepTries[size]++
			spec := small
			spec.Size = size
			batch = append(batch, attempt{KindSweep, sweepMSS, spec})
		}
		if len(batch) == 0 {
			break
		}
		r.progress(fmt.Sprintf("round %d: %d handshakes", round, len(batch)), round)
		results := r.runRound(ctx, batch, map[string]*ladder{KindSmall: down, KindLarge: up})
		if ctx.Err() != nil {
			break // cancelled attempts prove nothing
		}
		slow := r.adaptTimeout(results)
		contra := contradicted(results, floor, down.maxPass(), up.maxPass())
		if contra || anySilent(results) {
			// A size at or below one already carried failed, or the server
			// sent nothing at all in time: the path did not shrink, the
			// server or this host was too busy to answer in time (every
			// attempt of the round can fail that way, so no slow pass
			// shows it). The wait doubles.
			r.hsTimeout = min(2*r.hsTimeout, maxHandshakeTimeout)
		}
		if contra || slow || anySilent(results) {
			// And the rounds that follow send fewer handshakes at once.
			down.narrow()
			up.narrow()
		}
		for _, h := range results {
			// What proves nothing is tried again, with the longer timeout:
			// a silent server's attempt, every failure of a contradicted
			// round, and every failure of a slow round but a proven loss.
			if h.Silent || h.Outcome != diagnose.Completed && (contra || slow && !provenLoss(h)) {
				h.Retried = true
				retried++
				if h.Kind == KindSweep {
					sweepTries[h.HelloBytes]--
				}
			}
			r.keep(h)
			if h.Retried {
				continue
			}
			switch h.Kind {
			case KindSmall:
				if ok, decided := smallPassed(h); decided {
					down.record(h.MSS, ok)
				}
			case KindLarge:
				if ok, decided := largePassed(h); decided {
					up.record(h.MSS, ok)
				}
			case KindSweep:
				if h.Outcome == diagnose.Completed {
					sweepPassed[h.HelloBytes] = true
				}
			}
		}
		if round == 1 {
			afterFirst()
		}
		if round >= 8 {
			break
		}
	}
	// When the server's flight was too small to fill a segment at the top
	// rung (a small certificate), ask for more downstream bytes over a full
	// connection there.
	if ctx.Err() == nil && !r.downPassedAt(hi) && down.maxPass() == hi {
		r.progress("download", 0)
		r.keep(r.download(ctx, hi))
	}
	return unfinished // set by the deferred check
}

// maxHandshakeTimeout bounds how far adaptTimeout stretches the timeout.
const maxHandshakeTimeout = 5 * time.Second

// adaptTimeout reports whether a round ran congested, and then widens the
// handshake timeout. A round is congested when its slowest completed
// handshake took more than half the timeout: the server (or this host) was
// busy signing dozens of handshakes at once, and an attempt that timed out
// in that round may have been merely slow, not lost. On an idle path a
// completed handshake takes a few RTTs, far below the timeout, so a real
// black hole never looks congested.
func (r *runner) adaptTimeout(results []Handshake) bool {
	var slowest time.Duration
	for _, h := range results {
		if h.Outcome == diagnose.Completed {
			slowest = max(slowest, h.Duration)
		}
	}
	if slowest <= r.hsTimeout/2 || r.hsTimeout >= maxHandshakeTimeout {
		return false
	}
	r.hsTimeout = min(max(r.hsTimeout, 3*slowest), maxHandshakeTimeout)
	return true
}

// contradicted reports whether a ladder attempt failed at a size the path
// is known to carry: for small hellos the floor (the baseline passed
// there) or at most the largest size their ladder saw pass; for large
// hellos at most the largest size theirs saw pass. A large hello failing
// at the floor before any passed is no contradiction: the baseline's
// hello went in one segment, and a path that cannot read a split hello
// fails every large one (a busy machine fails the small ones too).
func contradicted(results []Handshake, floor, downPass, upPass int) bool {
	for _, h := range results {
		if h.Outcome == diagnose.Completed {
			continue
		}
		switch {
		case h.Kind == KindSmall && h.MSS <= max(floor, downPass):
			return true
		case h.Kind == KindLarge && h.MSS <= upPass:
			return true
		}
	}
	return false
}

// anySilent reports whether the server answered an attempt of the round
// with nothing at all (Handshake.Silent).
func anySilent(results []Handshake) bool {
	for _, h := range results {
		if h.Silent {
			return true
		}
	}
	return false
}

// provenLoss reports whether a failed attempt shows a loss whatever the
// load: the server's flight was sent (its smaller last segment arrived,
// beyond the gap) and its full-size segments never came. A slow server
// delays the whole flight; it cannot deliver the end without the start.
func provenLoss(h Handshake) bool {
	return h.Kind == KindSmall && h.Down == diagnose.Failed && h.OOOPackets > 0
}

// smallPassed maps a small-hello attempt to a downstream ladder result.
func smallPassed(h Handshake) (ok, decided bool) {
	switch {
	case h.Outcome == diagnose.Completed:
		return true, true // passed, or the flight was too small to tell: not a failure
	case h.Outcome == diagnose.ConnectFailed || h.Outcome == diagnose.Timeout:
		return false, false
	}
	return false, true
}

// largePassed maps a large-hello attempt to an upstream ladder result.
func largePassed(h Handshake) (ok, decided bool) {
	switch {
	case h.Up == diagnose.Passed:
		return true, true
	case h.Outcome == diagnose.ConnectFailed || h.Outcome == diagnose.Timeout:
		return false, false
	}
	return false, true
}

// downPassedAt reports whether a handshake at TCP_MAXSEG mss carried a
// full-size segment downstream.
func (r *runner) downPassedAt(mss int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, h := range r.handshakes {
		if h.MSS == mss && h.Down == diagnose.Passed {
			return true
		}
	}
	return false
}

// flight is an attempt under way.
type flight struct {
	a       attempt
	start   time.Time
	cancel  context.CancelFunc
	dropped bool // cancelled by speculation: its result is thrown away
}

// speculateQuiet is the least time without a new result, once results
// have come in, before runRound speculates.
const speculateQuiet = 100 * time.Millisecond

// runRound runs a round's attempts in parallel (within MaxInFlight) and
// returns their evidence once all are done. A failure costs the whole
// handshake timeout while a pass comes back within a few round trips, so
// once the passes are in and the rest has been quiet for a while, it
// speculates: it takes the attempts still running as failures, asks each
// ladder for the round that would follow, and starts it at once, inside
// the same round. Attempts above the lowest one still running of a ladder
// are cancelled to make room (their answer would not change the next
// round). Every speculative attempt is a real measurement: when the guess
// was wrong (a slow pass), the ladder simply continues from what was
// measured, one round later.
func (r *runner) runRound(ctx context.Context, batch []attempt, ladders map[string]*ladder) []Handshake {
	type landed struct {
		f *flight
		h Handshake
	}
	ch := make(chan landed, len(batch)+2*MaxInFlight)
	pending := map[*flight]bool{}
	launch := func(as []attempt) {
		for _, a := range as {
			fctx, cancel := context.WithCancel(ctx)
			f := &flight{a: a, start: time.Now(), cancel: cancel}
			pending[f] = true
			go func() {
				h := r.handshake(fctx, a.kind, a.mss, a.spec)
				cancel()
				r.learn(h)
				ch <- landed{f, h}
			}()
		}
	}
	launch(batch)
	var out []Handshake
	var last time.Time
	var slowest time.Duration
	speculated := false
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for len(pending) > 0 {
		select {
		case l := <-ch:
			delete(pending, l.f)
			if l.f.dropped {
				continue
			}
			out = append(out, l.h)
			last = time.Now()
			if l.h.Outcome == diagnose.Completed {
				slowest = max(slowest, l.h.Duration)
			}
		case <-tick.C:
			if speculated || slowest == 0 || ctx.Err() != nil || time.Since(last) < max(speculateQuiet, slowest/2) {
				continue
			}
			ready := true
			for f := range pending {
				if ladders[f.a.kind] == nil || time.Since(f.start) < slowest {
					ready = false
				}
			}
			if ready {
				speculated = true
				launch(r.speculate(out, pending, ladders))
			}
		}
	}
	return out
}

// speculate returns, per ladder, the attempts of the round that would
// follow if every attempt still pending failed, and cancels the pending
// attempts above the lowest pending one of each ladder.
func (r *runner) speculate(done []Handshake, pending map[*flight]bool, ladders map[string]*ladder) []attempt {
	var out []attempt
	for kind, l := range ladders {
		c := l.clone()
		var spec tlswire.HelloSpec
		for _, h := range done {
			if h.Kind != kind {
				continue
			}
			ok, decided := smallPassed(h)
			if kind == KindLarge {
				ok, decided = largePassed(h)
			}
			if decided {
				c.record(h.MSS, ok)
			}
		}
		busy := map[int]bool{}
		edge := 0 // the lowest pending value above the largest pass
		for f := range pending {
			if f.a.kind == kind {
				spec = f.a.spec
				c.record(f.a.mss, false)
				if f.a.mss > c.maxPass() && (edge == 0 || f.a.mss < edge) {
					edge = f.a.mss
				}
			}
		}
		if edge == 0 {
			continue
		}
		for f := range pending {
			if f.a.kind == kind {
				if f.a.mss > edge {
					f.dropped = true
					f.cancel()
				} else {
					busy[f.a.mss] = true
				}
			}
		}
		for _, m := range c.next() {
			if !busy[m] {
				out = append(out, attempt{kind, m, spec})
			}
		}
		r.log.Debug("speculative round", "kind", kind, "bracket", fmt.Sprintf("%d-%d", c.maxPass(), edge), "attempts", len(out))
	}
	return out
}

// udpTests sends the datagram tests: one at the route MTU with Don't
// Fragment (following any ICMP-signalled MTU down, as tracepath does) and a
// 2000-byte one that has to be fragmented. Silence means loss only if a
// small control datagram sent afterwards is answered: servers rate-limit
// their ICMP errors (Linux: about one a second per client, a burst of six),
// so a silent probe without an answered control proves nothing.
func (r *runner) udpTests(ctx context.Context, localMTU int, rtt time.Duration) []UDPTest {
	// The RTT here comes from the first connect, which a lost SYN inflates
	// to a second or more: cap what it adds.
	timeout := min(max(600*time.Millisecond, 300*time.Millisecond+4*rtt), 2*time.Second)
	pacer := newUDPPacer()
	probe := func(size int, df bool) UDPTest {
		start := time.Now()
		a := udpProbe(ctx, r.addr, udpPort, size, df, timeout, pacer)
		t := UDPTest{Size: size, DF: df, Port: udpPort, Answer: a.Answer, MTU: a.MTU, From: a.From,
			Copies: a.Sent, Duration: time.Since(start)}
		if a.Err != nil {
			t.Error = a.Err.Error()
		}
		if t.Answer == diagnose.AnswerNone && !a.Verified {
			t.Answer = diagnose.AnswerNoneUnverified
		}
		return t
	}
	// First the quick way: both datagrams, then a control, twice (see
	// udpOrdered). What that answers or proves is settled; the rest goes
	// the slow way, side by side: if both are answered there they compete
	// for the server's ICMP tokens, and the loser's second copy, sent after
	// a refill, wins.
	sizes, dfs := []int{localMTU, 2000}, []bool{true, false}
	start := time.Now()
	quick, proven, ctl := udpOrdered(ctx, r.addr, udpPort, sizes, dfs, timeout, pacer)
	tests := make([]UDPTest, 2)
	var wg sync.WaitGroup
	for i := range sizes {
		a := quick[i]
		settled := a.Err == nil && (a.Answer == diagnose.AnswerPortUnreachable || a.Answer == diagnose.AnswerLocalEMSGSIZE ||
			a.Answer == diagnose.AnswerFragNeeded && dfs[i] || a.Answer == diagnose.AnswerNone && proven[i] >= 2)
		if settled {
			tests[i] = UDPTest{Size: sizes[i], DF: dfs[i], Port: udpPort, Answer: a.Answer, MTU: a.MTU, From: a.From,
				Copies: a.Sent, Duration: time.Since(start)}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			tests[i] = probe(sizes[i], dfs[i])
		}()
	}
	wg.Wait()
	if proven[0] >= 2 || proven[1] >= 2 {
		// The small control datagrams that proved a silence were answered:
		// that is evidence too (UDP itself gets through).
		tests = append(tests, UDPTest{Size: 128, DF: true, Port: udpPort, Answer: ctl.Answer, Copies: ctl.Sent,
			Duration: time.Since(start)})
	}
	// Follow frag-needed answers down, at most a few plateaus.
	for last := tests[0]; last.Answer == diagnose.AnswerFragNeeded && last.MTU > 0 && last.MTU < last.Size && len(tests) < 5; {
		last = probe(last.MTU, true)
		tests = append(tests, last)
	}
	// Silence the quick way proved needs no further control.
	silent := false
	for i, t := range tests {
		silent = silent || (t.Answer == diagnose.AnswerNone || t.Answer == diagnose.AnswerNoneUnverified) && t.Error == "" && (i >= 2 || proven[i] < 2)
	}
	if silent && ctx.Err() == nil {
		control := probe(128, true)
		if control.Answer != diagnose.AnswerPortUnreachable {
			for i := range tests {
				if tests[i].Answer == diagnose.AnswerNone && (i >= 2 || proven[i] < 2) {
					tests[i].Answer = diagnose.AnswerNoneUnverified
				}
			}
		}
		tests = append(tests, control)
	}
	return tests
}

// fillEvidence converts the run's measurements into diagnose.Evidence.
func (r *runner) fillEvidence(rep *Report) {
	ev := &rep.Evidence
	for _, h := range r.handshakes {
		if h.Retried {
			continue
		}
		switch h.Kind {
		case KindNatural:
			continue // no size known: not evidence of one (portable.go)
		case KindSweep:
			if h.Outcome == diagnose.ConnectFailed || h.Outcome == diagnose.Timeout {
				continue
			}
			seg := h.SndMSS
			pkt := h.UpSize
			if seg == 0 {
				seg = h.MSS
			}
			ev.Hellos = append(ev.Hellos, diagnose.HelloTest{HelloBytes: h.HelloBytes, PacketSize: pkt,
				Segments: (h.HelloBytes + seg - 1) / max(seg, 1), Outcome: h.Outcome})
		default:
			if h.Outcome == diagnose.Timeout && h.Detail == "run timeout" {
				continue
			}
			ev.Segments = append(ev.Segments, h.segmentTest())
		}
		if h.Outcome == diagnose.Completed && h.Kind != KindDownload && h.FlightBytes > ev.FlightBytes {
			ev.FlightBytes = h.FlightBytes
		}
	}
	for _, v := range rep.Variants {
		if v.Outcome == diagnose.Timeout && v.Detail == "run timeout" {
			continue // cut short by the run's end: proves nothing
		}
		ev.Variants = append(ev.Variants, v.VariantTest)
	}
	unverified := false
	for _, u := range rep.UDP {
		if u.Error != "" || u.Answer == diagnose.AnswerLocalEMSGSIZE {
			continue
		}
		if u.Answer == diagnose.AnswerNoneUnverified {
			unverified = true
			continue
		}
		res := diagnose.Failed
		if u.Answer == diagnose.AnswerPortUnreachable {
			res = diagnose.Passed
		}
		ev.Datagrams = append(ev.Datagrams, diagnose.DatagramTest{Method: diagnose.MethodUDP, Size: u.Size, DF: u.DF,
			Fragmented: !u.DF && u.Size > ev.LocalMTU, Result: res, Answer: u.Answer, Proves: diagnose.Upstream})
		if u.Answer == diagnose.AnswerFragNeeded && u.MTU > 0 {
			ev.ICMPSignals = append(ev.ICMPSignals, diagnose.ICMPSignal{From: u.From, MTU: u.MTU})
		}
	}
	ev.Datagrams = append(ev.Datagrams, echoEvidence(rep.AssistedEcho, ev.LocalMTU)...)
	if unverified {
		ev.Skipped = append(ev.Skipped, "UDP size tests (the server answered no control datagram afterwards: its ICMP errors are rate-limited or filtered)")
	}
	// ICMP echo: the largest DF size that replied, the smallest above it
	// that did not, and the fragmented echo.
	var maxOK, minBad int
	for _, e := range rep.Echo {
		if e.DF && e.Replied && e.Size > maxOK {
			maxOK = e.Size
		}
	}
	for _, e := range rep.Echo {
		if e.Retried {
			continue
		}
		if e.DF && !e.Replied && e.Size > maxOK && (minBad == 0 || e.Size < minBad) {
			minBad = e.Size
		}
		if !e.DF {
			res := diagnose.Failed
			if e.Replied {
				res = diagnose.Passed
			}
			ev.Datagrams = append(ev.Datagrams, diagnose.DatagramTest{Method: diagnose.MethodICMPEcho, Size: e.Size,
				Fragmented: e.Size > ev.LocalMTU, Result: res, Answer: map[bool]diagnose.DatagramAnswer{true: diagnose.AnswerEchoReply, false: diagnose.AnswerNone}[e.Replied],
				Proves: diagnose.Unknown})
		}
	}
	if maxOK > 0 {
		ev.Datagrams = append(ev.Datagrams, diagnose.DatagramTest{Method: diagnose.MethodICMPEcho, Size: maxOK, DF: true, Result: diagnose.Passed, Answer: diagnose.AnswerEchoReply, Proves: diagnose.Unknown})
	}
	if minBad > 0 {
		ev.Datagrams = append(ev.Datagrams, diagnose.DatagramTest{Method: diagnose.MethodICMPEcho, Size: minBad, DF: true, Result: diagnose.Failed, Answer: diagnose.AnswerNone, Proves: diagnose.Unknown})
	}
}
