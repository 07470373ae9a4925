package probe

import (
	"context"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
)

// Assistant is a cooperating mtuscope server (the serve command implements
// it) that reports what it received, so a run can compare what was sent
// with what arrived. The probe works without one.
type Assistant interface {
	// Connection returns what the server saw of the connection whose
	// ClientHello carried sessionID (32 bytes, random per hello).
	Connection(ctx context.Context, sessionID []byte) (ServerObservation, error)
	// UDPEcho has the server send back a datagram making an IP packet of
	// size bytes, with Don't Fragment unless fragment is set: it tests the
	// server-to-client direction, which a plain server cannot.
	UDPEcho(ctx context.Context, size int, fragment bool) (UDPEchoResult, error)
}

// ServerObservation is the server's side of one connection.
type ServerObservation struct {
	// SYNMSS is the MSS option of the SYN as it arrived (after any clamp).
	SYNMSS int
	// HelloBytes and HelloSHA256 describe the ClientHello record as it
	// arrived; a difference from what was sent means it was rewritten.
	HelloBytes  int
	HelloSHA256 [32]byte
	// Retrans and PMTU are the server's TCP_INFO for the connection.
	Retrans int
	PMTU    int
}

// UDPEchoResult is the outcome of one UDPEcho.
type UDPEchoResult struct {
	Arrived bool // the server received the request
	Echoed  bool // its answer arrived here
}

// Echo sizes (IP bytes), for the ICMP echo tests and the server-assisted
// ones: a small control that must come back for the others to
// mean anything, and a datagram that has to be fragmented both ways.
const (
	echoControlSize = 128
	echoFragSize    = 2000
)

// AssistedEcho is one datagram sent through the server's UDP echo.
type AssistedEcho struct {
	Size     int  `json:"size"`
	Fragment bool `json:"fragment"`
	UDPEchoResult
	Error    string        `json:"error,omitempty"`
	Duration time.Duration `json:"-"`
}

// Answer names the outcome: AnswerEchoReply (both ways),
// AnswerRequestArrived (the server got it, its same-size answer was lost),
// AnswerNone (the request was lost), AnswerError.
func (e AssistedEcho) Answer() diagnose.DatagramAnswer {
	switch {
	case e.Error != "":
		return diagnose.AnswerError
	case e.Echoed:
		return diagnose.AnswerEchoReply
	case e.Arrived:
		return diagnose.AnswerRequestArrived
	}
	return diagnose.AnswerNone
}

// assistedEchoes runs the fragment test through the server's echo, which
// tells the directions apart: the server acknowledges a request with a
// short answer and echoes it at full size separately. The echo never
// answers with more than it received, so when fragments die on the way up
// the way down stays untested.
func assistedEchoes(ctx context.Context, a Assistant) []AssistedEcho {
	run := func(size int, fragment bool) AssistedEcho {
		start := time.Now()
		res, err := a.UDPEcho(ctx, size, fragment)
		e := AssistedEcho{Size: size, Fragment: fragment, UDPEchoResult: res, Duration: time.Since(start)}
		if err != nil {
			e.Error = err.Error()
		}
		return e
	}
	control := run(echoControlSize, false)
	if !control.Echoed {
		return []AssistedEcho{control}
	}
	return []AssistedEcho{control, run(echoFragSize, true)}
}

// echoEvidence turns the assisted echoes into datagram tests.
func echoEvidence(echoes []AssistedEcho, localMTU int) []diagnose.DatagramTest {
	var out []diagnose.DatagramTest
	if len(echoes) < 2 || !echoes[0].Echoed {
		return nil // no working control: silence proves nothing
	}
	for _, e := range echoes {
		t := diagnose.DatagramTest{Method: diagnose.MethodUDPEcho, Size: e.Size, DF: !e.Fragment,
			Fragmented: e.Fragment && e.Size > localMTU, Answer: e.Answer(), Result: diagnose.Passed, Proves: diagnose.None}
		switch {
		case e.Error != "":
			continue
		case !e.Arrived:
			t.Result, t.Proves = diagnose.Failed, diagnose.Upstream
		case !e.Echoed:
			t.Result, t.Proves = diagnose.Failed, diagnose.Downstream
		}
		out = append(out, t)
	}
	return out
}
