package probe

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/mtuscope/mtuscope/api"
	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/tlswire"
)

// The portable mode (Config.Portable; the only mode on Windows and macOS)
// sets no socket option Linux alone has: no TCP_MAXSEG, no TCP_INFO, no
// error queue. What it rests on holds on every stack: with Nagle off, one
// write of at most a segment on an idle connection leaves as one segment
// of that size. It sizes segments itself in the direction it sends
// (upstream); the other direction needs a server that writes segments of
// the sizes it is asked for: mtuscope serve's exact-size service, which
// also says what arrived. Against any other server neither direction's
// size can be set or read, and the run says so instead of guessing.

// KindNatural is the portable mode's baseline: a small hello on a
// connection at the system's own MSS.
const KindNatural = "natural"

// Why the portable mode leaves tests out, for Evidence.Skipped.
const (
	skipPortableLinux = "ClientHello size sweep and variants, UDP Don't-Fragment and ICMP echo tests (portable mode: they need " +
		"Linux socket options; run without --portable on Linux)"
	skipPortableNoServer = "upstream and downstream size tests (portable mode: without TCP_MAXSEG the segment sizes " +
		"of an ordinary server cannot be set or read; run probe against the operator's mtuscope server, e.g. its page " +
		"URL https://HOST:8443/, or open that page in a browser)"
)

// runPortable runs the portable method's tests in place of the Linux
// ladders; Run has connected already.
func (r *runner) runPortable(ctx context.Context, rep *Report, assistant func() Assistant) {
	ev := &rep.Evidence
	ev.Skipped = append(ev.Skipped, skipPortableLinux)
	r.progress("baseline", 0)
	small := tlswire.HelloSpec{ServerName: r.serverName, ALPN: []string{"http/1.1"}}
	base := r.natural(ctx, small)
	rep.HandshakeTimeout = r.hsTimeout
	a := assistant()
	if base.Outcome == diagnose.Completed && a != nil {
		r.assist(ctx, base, ev)
	}
	svc, ok := a.(ExactService)
	var host string
	var port, clamp int
	if ok {
		host, port, clamp, ok = svc.ExactService()
	}
	if !ok {
		ev.Skipped = append(ev.Skipped, skipPortableNoServer)
		return
	}
	if host == "" {
		host = r.addr.String()
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	info, err := r.exactInfo(ctx, addr)
	if err != nil {
		ev.Skipped = append(ev.Skipped, "upstream and downstream size tests (the server's exact-size service at "+addr+": "+err.Error()+")")
		return
	}
	hdr := diagnose.IPHeader(r.family)
	if ev.LocalMTU == 0 && info.SYNMSS > 0 {
		// The system named no interface MTU (wine does not): its SYN's MSS
		// says what it would send, as the server saw it.
		ev.LocalMTU = min(info.SYNMSS+hdr, maxProbeMTU)
		ev.Skipped = append(ev.Skipped, fmt.Sprintf("the local interface's MTU (unknown here; taken from the MSS "+
			"this host's SYN carried to the server, %d: an MSS clamp on the path would hide itself)", info.SYNMSS))
	}
	ev.OfferedMSS = ev.LocalMTU - hdr
	if top := clamp + hdr; clamp > 0 && top < ev.LocalMTU {
		// Loopback, jumbo frames: the service's listener is clamped below
		// the local MTU, and what it cannot carry is not the path's limit.
		ev.Skipped = append(ev.Skipped, fmt.Sprintf("sizes above %d bytes (the exact-size service's listener is clamped "+
			"to MSS %d; the local MTU is %d)", top, clamp, ev.LocalMTU))
		ev.LocalMTU, ev.OfferedMSS = top, clamp
	}
	if info.SYNMSS > 0 {
		// The MSS this host's SYN carried when it reached the server.
		ev.SettledMSS = info.SYNMSS
	}
	floor, _ := r.ladderBounds(ev.LocalMTU)
	// The service writes no segment larger than its connection's MSS, and
	// a request larger than this host's MSS would leave in two: the
	// server's MSS stands for both (a clamp on the path clamps both SYNs).
	hi := min(ev.LocalMTU, info.MaxSize, maxProbeMTU)
	if hi < floor+hdr {
		ev.Skipped = append(ev.Skipped, fmt.Sprintf("upstream and downstream size tests (the exact-size service "+
			"can write segments of at most %d bytes)", info.MaxSize))
		return
	}
	r.exactLadders(ctx, addr, info, floor+hdr, hi)
}

// natural runs the baseline handshake at the system's own MSS. Without
// TCP_INFO a handshake that did not complete says nothing of which
// direction lost what, and is left at that.
func (r *runner) natural(ctx context.Context, spec tlswire.HelloSpec) Handshake {
	h := r.handshake(ctx, KindNatural, 0, spec)
	if h.Outcome == diagnose.Completed || h.Outcome == diagnose.Alert || h.Outcome == diagnose.NotTLS || h.Outcome == diagnose.ConnectFailed {
		h.Up, h.Down = diagnose.Untested, diagnose.Untested
	} else {
		h.Outcome, h.Up, h.Down = diagnose.Timeout, diagnose.Untested, diagnose.Untested
		h.Detail = fmt.Sprintf("the server's flight did not complete at this host's own MSS (%d bytes of it arrived); "+
			"the portable mode cannot tell which direction lost what", h.FlightBytes)
	}
	h.UpSize, h.DownSize = 0, 0
	return r.keep(h)
}

// exactTest is one exact-size test of a round.
type exactTest struct {
	kind string
	size int
}

// exactLadders searches both directions' largest packet, to the byte, with
// the exact-size service: the same ladders as the Linux mode's, whose
// values are IP packet sizes here.
func (r *runner) exactLadders(ctx context.Context, addr string, info api.ExactInfo, lo, hi int) {
	up := newLadder(lo, hi, plateaus, 14, 20)
	down := newLadder(lo, hi, plateaus, 14, 20)
	ladders := map[string]*ladder{KindExactUp: up, KindExactDown: down}
	for round := 1; round <= 8 && ctx.Err() == nil; round++ {
		var batch []exactTest
		for _, s := range down.next() {
			batch = append(batch, exactTest{KindExactDown, s})
		}
		for _, s := range up.next() {
			batch = append(batch, exactTest{KindExactUp, s})
		}
		if len(batch) == 0 {
			break
		}
		r.progress(fmt.Sprintf("round %d: %d exact-size tests", round, len(batch)), round)
		results := make([]Handshake, len(batch))
		var wg sync.WaitGroup
		for i, t := range batch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if t.kind == KindExactUp {
					results[i] = r.exactUp(ctx, addr, t.size, info)
				} else {
					results[i] = r.exactDown(ctx, addr, t.size, info)
				}
			}()
		}
		wg.Wait()
		if ctx.Err() != nil {
			break
		}
		congested := r.adaptTimeout(results)
		for i, h := range results {
			l := ladders[batch[i].kind]
			if h.Outcome != diagnose.Completed && batch[i].size <= max(lo, l.maxPass()) {
				// A size at or below one carried failed: the server or
				// this host was too busy, not the path smaller.
				congested = true
				r.hsTimeout = min(2*r.hsTimeout, maxHandshakeTimeout)
			}
		}
		for i, h := range results {
			if congested && h.Outcome != diagnose.Completed {
				h.Retried = true
			}
			r.keep(h)
			if h.Retried {
				continue
			}
			switch {
			case h.Up == diagnose.Passed && h.UpSize < batch[i].size:
				// Split on the way: it proves its own size, not the one
				// asked, which cannot leave here in one segment.
				up.record(h.UpSize, true)
				up.hi = min(up.hi, h.UpSize)
			case h.Up == diagnose.Passed || h.Down == diagnose.Passed:
				ladders[batch[i].kind].record(batch[i].size, true)
			case h.Up == diagnose.Failed || h.Down == diagnose.Failed:
				ladders[batch[i].kind].record(batch[i].size, false)
			}
		}
	}
}

// finish ends a portable run as Run ends the Linux mode's (the server's
// UDP echo, the evidence, the time bound); the kernel's path MTU is not
// read (it needs Linux's IP_MTU).
func (r *runner) finish(ctx context.Context, rep *Report, assistant func() Assistant) {
	if assistant() != nil && ctx.Err() == nil {
		r.progress("udp echo", 0)
		rep.AssistedEcho = assistedEchoes(ctx, r.cfg.Assistant)
	}
	r.mu.Lock()
	rep.Handshakes = r.handshakes
	r.mu.Unlock()
	r.fillEvidence(rep)
	if ctx.Err() != nil {
		rep.Evidence.Incomplete = true
		rep.Evidence.Skipped = append(rep.Evidence.Skipped, fmt.Sprintf("the run hit its %s timeout before finishing", r.cfg.Timeout))
	}
}
