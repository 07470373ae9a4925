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
	done := make(chan struct{})
	go func() {
		defer close(done)
		start := time.Now()
		got, _, err := frag.round(ctx, []int{2000, 2000}, timeout)
		if err == nil {
			fragOut = append(fragOut, EchoTest{Size: 2000, Replied: got[2000], Round: 1, Duration: time.Since(start)})
		}
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
	return append(out, fragOut...), ""
}
