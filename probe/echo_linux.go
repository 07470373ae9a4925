//go:build linux

package probe

import (
	"context"
	"errors"
	"time"
)

// echoTests runs the ICMP echo tests when raw sockets are allowed: a DF
// size search in rounds (the same ladder as TCP, on packet sizes) and a
// 2000-byte echo that has to be fragmented both ways. Without privilege it
// returns why it skipped.
func (r *runner) echoTests(ctx context.Context, localMTU int) ([]EchoTest, string) {
	df, err := newEchoer(r.addr, true)
	if err != nil {
		if errors.Is(err, errNoPrivilege) {
			return nil, "ICMP echo tests (need root or CAP_NET_RAW; TCP, TLS and UDP tests ran)"
		}
		return nil, "ICMP echo tests: " + err.Error()
	}
	defer df.Close()
	frag, err := newEchoer(r.addr, false)
	if err != nil {
		return nil, "ICMP echo tests: " + err.Error()
	}
	defer frag.Close()
	// An echo is answered by the kernel, with no server work to wait for:
	// the round trip and a margin will do (the handshake timeout is 600 ms
	// plus 4 RTT, or more for a slow server).
	timeout := max(300*time.Millisecond, r.hsTimeout-500*time.Millisecond)
	floor := 576
	if r.addr.Is6() {
		floor = 1280
	}
	var out []EchoTest
	var fragOut []EchoTest
	var fragSkipped string
	done := make(chan struct{})
	go func() {
		defer close(done)
		fragOut, fragSkipped = fragEcho(ctx, frag, timeout)
	}()
	l := newLadder(floor, min(localMTU, maxProbeMTU), plateaus, 14, 20)
	sent := 0
	for round := 1; ctx.Err() == nil && round <= 8; round++ {
		sizes := l.next()
		if len(sizes) == 0 || sent+len(sizes) > MaxDatagrams-10 {
			break
		}
		start := time.Now()
		got, n, err := df.round(ctx, sizes, timeout)
		sent += n
		if err != nil || ctx.Err() != nil {
			break
		}
		for _, s := range sizes {
			l.record(s, got[s])
			out = append(out, EchoTest{Size: s, DF: true, Replied: got[s], Round: round, Duration: time.Since(start)})
		}
	}
	<-done
	return append(out, fragOut...), fragSkipped
}

// fragEcho sends two copies of a 2000-byte echo that has to be fragmented
// both ways. Two lost copies are not yet a loss of fragments: 1% random
// loss takes both about once in 650 runs (each copy is four packets), and a
// busy computer can miss a reply. So a silent pair is sent once more with a
// small echo beside it and twice the wait: only a pair silent again while
// the small echo came back counts as failed. A pair that proved nothing is
// kept in the report, marked retried; when not even the small echo came
// back, the test is left out and the returned string says why.
func fragEcho(ctx context.Context, e *echoer, timeout time.Duration) ([]EchoTest, string) {
	start := time.Now()
	got, _, err := e.round(ctx, []int{echoFragSize, echoFragSize}, timeout)
	if err != nil {
		return nil, ""
	}
	first := EchoTest{Size: echoFragSize, Replied: got[echoFragSize], Round: 1, Duration: time.Since(start)}
	if first.Replied {
		return []EchoTest{first}, ""
	}
	first.Retried = true
	if ctx.Err() != nil {
		return []EchoTest{first}, "" // the run's end cut it short
	}
	start = time.Now()
	got, _, err = e.round(ctx, []int{echoFragSize, echoFragSize, echoControlSize}, max(2*timeout, time.Second))
	if err != nil {
		return []EchoTest{first}, ""
	}
	second := EchoTest{Size: echoFragSize, Replied: got[echoFragSize], Round: 2, Duration: time.Since(start)}
	control := EchoTest{Size: echoControlSize, Replied: got[echoControlSize], Round: 2, Duration: second.Duration}
	if second.Replied || control.Replied && ctx.Err() == nil {
		return []EchoTest{first, second, control}, "" // decided either way
	}
	// Silent beside a lost control, or cut short by the run's end.
	second.Retried, control.Retried = true, true
	out := []EchoTest{first, second, control}
	if ctx.Err() != nil {
		return out, ""
	}
	return out, "fragmented ICMP echo test (two pairs got no reply, and neither did a small echo sent with the second: nothing to compare with)"
}
