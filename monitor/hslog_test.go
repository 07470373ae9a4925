package monitor

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/flow"
)

// The handshake log writes every verified failure, and unverified ones
// (a forged segment each) within its rate: 100,000 forged timeouts over
// 100 s of packet time take at most the burst plus a line a second.
func TestHandshakeLogUnverifiedRate(t *testing.T) {
	var out bytes.Buffer
	l := NewHandshakeLog(&out, nil)
	h := flow.Handshake{Client: netip.MustParseAddrPort("[2001:db8:8000::1]:40000"), Server: server, Family: 6,
		Outcome: diagnose.Timeout, HelloBytes: 517, HelloSegments: 1}
	for i := range 100_000 {
		h.End = t0.Add(time.Duration(i) * time.Millisecond)
		h.Start = h.End.Add(-10 * time.Second)
		if err := l.Write(h); err != nil {
			t.Fatal(err)
		}
	}
	forged := l.Lines()
	h.Verified = true
	for i := range 1000 {
		h.End = t0.Add(100*time.Second + time.Duration(i)*time.Millisecond)
		l.Write(h)
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	lines := bytes.Count(out.Bytes(), []byte("\n"))
	t.Logf("forged: %d lines written, %d suppressed; %d bytes in all", forged, l.Suppressed(), out.Len())
	if forged > UnverifiedLogBurst+100*UnverifiedLogRate+1 || forged < UnverifiedLogBurst || forged+l.Suppressed() != 100_000 {
		t.Errorf("%d forged lines written, %d suppressed", forged, l.Suppressed())
	}
	if uint64(lines) != forged+1000 || l.Lines() != forged+1000 {
		t.Errorf("%d lines in the log, %d counted, want %d", lines, l.Lines(), forged+1000)
	}
}
