package server

import (
	"fmt"

	"github.com/mtuscope/mtuscope/api"
	"github.com/mtuscope/mtuscope/diagnose"
)

// tooSlow says why a family's page results cannot be read as the path's,
// or "" when they can. The smallest rung (1260 bytes over IPv4, 1280 over
// IPv6: what every path must carry) is the control. When the page gave up
// on it, after the retry with a longer wait, while the server received its
// ClientHello whole and the client's kernel acknowledged the server's whole
// answer, the packets crossed both ways and the handshake simply was not
// finished in the page's wait: a computer too busy (or a browser too slow)
// to measure. A verdict built on such rounds would blame the path for the
// computer (tls_failed, MTU 0, under CPU load), so there is none.
func tooSlow(fam int, rungs []RungResult) string {
	var smallest *RungResult
	for i := range rungs {
		r := &rungs[i]
		if r.Browser.Hello == api.StepSkipped || r.Browser.Hello == "" {
			continue
		}
		if smallest == nil || r.MSS < smallest.MSS {
			smallest = r
		}
	}
	if smallest == nil || smallest.Browser.Hello != api.StepFail {
		return ""
	}
	for _, s := range smallest.Server {
		if s.Kind != kindRung || s.HelloHash == "" || !flightAcked(s) {
			continue
		}
		return fmt.Sprintf("The page gave up on the smallest size, %d bytes, after %d ms, although the server received its "+
			"ClientHello whole and this computer acknowledged all %d bytes of the server's answer: nothing was lost on the network",
			smallest.MSS+diagnose.IPHeader(fam), smallest.Browser.Millis, s.FlightBytes)
	}
	return ""
}
