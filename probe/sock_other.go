//go:build !linux

package probe

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
)

const supported = false

var errUnsupported = errors.New("not supported on this OS")

func routeMTU(netip.Addr) (int, error) { return 0, errUnsupported }

func udpProbe(context.Context, netip.Addr, int, int, bool, time.Duration, *udpPacer) udpAnswer {
	return udpAnswer{Answer: diagnose.AnswerNone, Err: errUnsupported}
}

func (r *runner) echoTests(context.Context, int) ([]EchoTest, string) {
	return nil, "ICMP echo tests: " + errUnsupported.Error()
}

func udpOrdered(_ context.Context, _ netip.Addr, _ int, sizes []int, _ []bool, _ time.Duration, _ *udpPacer) ([]udpAnswer, []int, udpAnswer) {
	out := make([]udpAnswer, len(sizes))
	for i := range out {
		out[i] = udpAnswer{Answer: diagnose.AnswerNone, Err: errUnsupported}
	}
	return out, make([]int, len(sizes)), udpAnswer{Answer: diagnose.AnswerNone, Err: errUnsupported}
}
