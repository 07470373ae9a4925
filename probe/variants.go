package probe

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/tlswire"
)

// KindVariant marks the handshakes of the variant tests.
const KindVariant = "variant"

// Sizes and timing of the variants.
const (
	// variantSize is the reference hello's record size: out of the
	// 256-511-byte window, one segment at every MSS a path must carry.
	variantSize = 600
	// windowSize is the variant inside the window.
	windowSize = 400
	// splitPause is the wait between the two segments of the paused split
	// (tldr.fail's test: two writes a second apart).
	splitPause = time.Second
)

// variant is one ClientHello of the variant tests and how it is sent.
type variant struct {
	name string
	spec tlswire.HelloSpec
	// split sends the record in two TCP segments, cut in the middle, the
	// second once the first is acknowledged and pause has passed.
	split bool
	pause time.Duration
	// records carries the hello in two TLS records, in one write.
	records bool
}

// VariantAttempt is one attempt of one variant.
type VariantAttempt struct {
	diagnose.VariantTest
	// MSS is the TCP_MAXSEG the attempt was dialled with.
	MSS      int
	Duration time.Duration
}

// variantSet returns the hellos of the variant tests: a reference, and
// hellos that differ from it (or, for the post-quantum key share, from a
// classical hello of the same size) in one thing each.
func (r *runner) variantSet(alpn []string) []variant {
	ref := tlswire.HelloSpec{ServerName: r.serverName, ALPN: alpn, Size: variantSize}
	with := func(change func(*tlswire.HelloSpec)) tlswire.HelloSpec {
		s := ref
		change(&s)
		return s
	}
	pq := tlswire.HelloSpec{ServerName: r.serverName, ALPN: alpn, Groups: []tlswire.Group{tlswire.GroupX25519MLKEM768, tlswire.GroupX25519}}
	large := ref
	large.Size, _ = tlswire.NaturalSize(pq)
	vs := []variant{
		{name: diagnose.VariantReference, spec: ref},
		{name: diagnose.VariantMLDSA, spec: with(func(s *tlswire.HelloSpec) { s.MLDSA = true })},
		{name: diagnose.VariantPQOffered, spec: with(func(s *tlswire.HelloSpec) { s.OfferOnly = []tlswire.Group{tlswire.GroupX25519MLKEM768} })},
		{name: diagnose.VariantLengthWindow, spec: with(func(s *tlswire.HelloSpec) { s.Size = windowSize })},
		{name: diagnose.VariantTwoRecords, spec: ref, records: true},
		{name: diagnose.VariantTwoSegments, spec: ref, split: true},
		{name: diagnose.VariantPausedSplit, spec: ref, split: true, pause: splitPause},
		{name: diagnose.VariantClassicLarge, spec: large},
		{name: diagnose.VariantPQKeyShare, spec: pq},
	}
	if _, err := netip.ParseAddr(r.serverName); r.serverName != "" && err != nil {
		vs = append(vs, variant{name: diagnose.VariantNoSNI, spec: with(func(s *tlswire.HelloSpec) { s.ServerName = "" })})
	}
	return vs
}

// variantTests runs the variants at TCP_MAXSEG mss, all at once, then
// again (at most twice more) those that failed every attempt so far, each
// with the hello it is compared with, until each failure is paired with
// its control's pass in two rounds (diagnose's rule). A round follows only
// one in which something completed (otherwise the path or the server is
// down and more rounds learn nothing), with twice the timeout when a
// control timed out or the slowest pass took half the timeout (a busy
// server or computer). The split with a pause is not repeated while the
// split without one fails: it can add nothing then.
//
// alive says the baseline completed: the server answers, so a round in
// which nothing completed was a busy moment, and the next one runs.
func (r *runner) variantTests(ctx context.Context, mss int, timeout, rtt time.Duration, alpn []string, alive bool) []VariantAttempt {
	vs := r.variantSet(alpn)
	var out []VariantAttempt
	for round := 1; round <= 3 && ctx.Err() == nil; round++ {
		batch := vs
		if round > 1 {
			again, slow := variantsAgain(out, round-1, timeout, alive)
			batch = slices.DeleteFunc(slices.Clone(vs), func(v variant) bool { return !again[v.name] })
			if slow {
				timeout = min(2*timeout, maxHandshakeTimeout)
			}
		}
		if len(batch) == 0 {
			break
		}
		out = append(out, r.variantRound(ctx, batch, round, mss, timeout, rtt)...)
	}
	return out
}

// variantControl is the hello a variant is compared with for the reruns:
// the reference's is the hello without SNI (a name refused: the reference
// fails, the hello without one passes).
func variantControl(name string) string {
	if name == diagnose.VariantReference {
		return diagnose.VariantNoSNI
	}
	return diagnose.VariantControl(name)
}

// variantsAgain returns the variants the next round runs, none when
// nothing completed in the last round and the baseline did not either:
// each that failed every attempt so
// far with fewer than two rounds in which its control completed, and that
// control; after the second round only those whose control completed at
// least once (a control that fails every time is the device's target too,
// and more rounds would not pair anything). slow says the last round ran
// slow: the reference, the plainest hello, failed without a reset or an
// alert, or the slowest pass took more than half the timeout.
func variantsAgain(out []VariantAttempt, last int, timeout time.Duration, alive bool) (again map[string]bool, slow bool) {
	passed := map[string]map[int]bool{}
	failed := map[string]map[int]bool{}
	completed := false
	for _, a := range out {
		m := failed
		if a.Outcome == diagnose.Completed {
			m = passed
			completed = completed || a.Attempt == last
			slow = slow || a.Attempt == last && a.Duration > timeout/2
		} else if a.Attempt == last && a.Name == diagnose.VariantReference && a.Outcome != diagnose.Reset && a.Outcome != diagnose.Alert {
			slow = true
		}
		if m[a.Name] == nil {
			m[a.Name] = map[int]bool{}
		}
		m[a.Name][a.Attempt] = true
	}
	again = map[string]bool{}
	if !completed && !alive {
		return again, slow
	}
	for name, rounds := range failed {
		c := variantControl(name)
		switch {
		case len(passed[name]) > 0 || c == "":
			continue
		case name == diagnose.VariantPausedSplit && len(passed[diagnose.VariantTwoSegments]) == 0:
			continue
		case last >= 2 && len(passed[c]) == 0:
			continue
		}
		pairs := 0
		for a := range rounds {
			if passed[c][a] {
				pairs++
			}
		}
		if pairs < 2 {
			again[name], again[c] = true, true
		}
	}
	return again, slow
}

// variantRound runs the variants in parallel (within the run's bounds on
// connections) and returns their attempts in the set's order.
func (r *runner) variantRound(ctx context.Context, vs []variant, attempt, mss int, timeout, rtt time.Duration) []VariantAttempt {
	out := make([]VariantAttempt, len(vs))
	var wg sync.WaitGroup
	for i, v := range vs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = r.tryVariant(ctx, v, attempt, mss, timeout, rtt)
		}()
	}
	wg.Wait()
	r.log.Debug("variant round", "attempt", attempt, "variants", len(vs), "timeout", timeout)
	return out
}

// tryVariant sends one variant on a new connection and follows the
// server's answer (answering a HelloRetryRequest) until its first flight
// is complete, the connection ends, or timeout passes.
func (r *runner) tryVariant(ctx context.Context, v variant, attempt, mss int, timeout, rtt time.Duration) (a VariantAttempt) {
	a = VariantAttempt{VariantTest: diagnose.VariantTest{Name: v.name, Attempt: attempt, Records: 1, Segments: 1}, MSS: mss}
	start := time.Now()
	defer func() { a.Duration = time.Since(start) }()
	hello, err := tlswire.Build(v.spec, rand.Reader)
	rec := []byte(nil)
	if err == nil {
		rec = hello.Record
		if v.records {
			rec, err = tlswire.SplitRecord(hello.Record, len(hello.Message())/2)
			a.Records = 2
		}
	}
	if err != nil {
		a.Outcome, a.Detail = diagnose.Timeout, err.Error()
		return a
	}
	a.HelloBytes = len(rec)
	conn, err := r.dial(ctx, mss)
	if err != nil {
		a.Outcome, a.Detail = diagnose.ConnectFailed, err.Error()
		return a
	}
	defer conn.Close()
	raw := conn.(*slotConn).Conn
	deadline := time.Now().Add(timeout + v.pause)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()

	sent := len(rec)
	var werr error
	if v.split {
		cut := len(rec) / 2
		a.Segments, a.PauseMS = 2, int(v.pause/time.Millisecond)
		if _, werr = conn.Write(rec[:cut]); werr == nil {
			// The second write must be a segment of its own: wait until
			// the first is acknowledged (or the pause is over).
			waitAcked(ctx, raw, max(v.pause, timeout/4))
			if v.pause > 0 {
				sleepCtx(ctx, v.pause)
			}
			_, werr = conn.Write(rec[cut:])
		}
	} else {
		_, werr = conn.Write(rec)
	}
	wrote := time.Now()
	flight := tlswire.NewFlight(hello)
	var ferr, rerr error
	if rerr = werr; rerr == nil {
		buf := make([]byte, 16384)
		for {
			n, err := conn.Read(buf)
			if n > 0 {
				var done bool
				done, ferr = flight.Feed(buf[:n])
				if errors.Is(ferr, tlswire.ErrHelloRetry) && flight.RetryRequest != nil {
					// The server asks for another key share: answer as a
					// client does, on the same connection.
					var second *tlswire.Hello
					if second, ferr = hello.AnswerRetry(flight.RetryRequest, rand.Reader); ferr == nil {
						a.RetryGroup = second.Retry.Group.String()
						sent += len(second.Record)
						if _, rerr = conn.Write(second.Record); rerr != nil {
							break
						}
						wrote = time.Now()
						rest := flight.Rest()
						hello, flight = second, tlswire.NewFlight(second)
						done, ferr = flight.Feed(rest)
					}
				}
				if done || ferr != nil {
					break
				}
			}
			if err != nil {
				rerr = err
				break
			}
		}
	}
	resetAfter := time.Since(wrote)
	info, _ := readTCPInfo(raw)
	h := Handshake{Kind: KindVariant, MSS: mss, HelloBytes: len(rec)}
	r.classify(&h, info, flight, ferr, rerr, ctx.Err() != nil)
	a.Outcome, a.Detail, a.PacketSize = h.Outcome, h.Detail, h.UpSize
	if !v.split {
		if seg := h.SndMSS; seg > 0 {
			a.Segments = (len(rec) + seg - 1) / seg
		}
	}
	switch a.Outcome {
	case diagnose.Reset:
		a.ResetBy = resetBy(info, sent, resetAfter, rtt)
		if isReset(rerr) {
			a.Detail = "connection reset"
		}
	case diagnose.Alert:
		a.Alert = h.Detail
	}
	return a
}

// resetBy says who reset a connection, when the evidence does: the server
// acknowledges a hello it received before any answer of its own, so a
// reset while part of the hello was unacknowledged came from something
// on the path (which dropped it), as does one sooner than half a round
// trip after the hello (when the round trip is long enough to tell).
// tcpi_bytes_acked counts the SYN as one byte.
func resetBy(info tcpInfo, sent int, after, rtt time.Duration) string {
	switch {
	case info.BytesAcked > 0 && info.BytesAcked-1 < int64(sent):
		return diagnose.ResetByPath
	case rtt >= time.Millisecond && after < rtt/2:
		return diagnose.ResetByPath
	case info.BytesAcked > 0:
		return diagnose.ResetByServer
	}
	return ""
}

// variantMSS is the TCP_MAXSEG of the variants, the sweep's: a 1280-byte
// packet (the IPv6 minimum), or the local route's MSS when smaller.
func (r *runner) variantMSS(hi int) int {
	return min(1280-diagnose.IPHeader(r.family), hi)
}

// waitAcked waits, at most d, until the connection has no segment
// unacknowledged (without TCP_INFO it just waits a little).
func waitAcked(ctx context.Context, c net.Conn, d time.Duration) {
	end := time.Now().Add(d)
	for time.Now().Before(end) && ctx.Err() == nil {
		info, err := readTCPInfo(c)
		if err != nil {
			sleepCtx(ctx, min(d, 20*time.Millisecond))
			return
		}
		if info.Unacked == 0 {
			return
		}
		sleepCtx(ctx, 2*time.Millisecond)
	}
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
