package analyze

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/flow"
)

// TestWriteJSONAsEncoder checks that WriteJSON writes the bytes a
// json.Encoder with two-space indentation writes, for handshakes with
// every field set or empty, strings that need escaping, IPv6, years
// encoding/json refuses, and a result from a real analysis.
func TestWriteJSONAsEncoder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	strs := []string{"", "example.com", `a"b\c`, "<tag>&", "ctl\x00\x01\n\t\b\f", "bad\xff\xfeutf8", "é ü 日本", "\u2028\u2029", "\x7f"}
	addrs := []netip.AddrPort{{}, netip.MustParseAddrPort("192.0.2.1:443"), netip.MustParseAddrPort("[2001:db8::1]:8443"),
		netip.MustParseAddrPort("[::ffff:192.0.2.7]:1"), netip.AddrPortFrom(netip.MustParseAddr("fe80::1").WithZone("eth<0>"), 5)}
	n := func(k int) int {
		if rng.IntN(3) == 0 {
			return 0
		}
		return rng.IntN(k) - k/10
	}
	var hs []Handshake
	for i := range 500 {
		a := addrs[rng.IntN(len(addrs))]
		h := Handshake{Handshake: flow.Handshake{
			Client: addrs[rng.IntN(len(addrs))], Server: addrs[rng.IntN(len(addrs))], Family: n(7),
			Start: time.Unix(int64(rng.IntN(2e9)), int64(rng.IntN(1e9))).UTC(), End: time.Unix(int64(i), 0).In(time.FixedZone("x", 3600*n(20))),
			Outcome: diagnose.Outcome(strs[rng.IntN(len(strs))]), Detail: strs[rng.IntN(len(strs))], ClientMSS: n(1500), ServerMSS: n(9000),
			SNI: strs[rng.IntN(len(strs))], HelloBytes: n(3000), HelloSegments: n(4), HelloTruncated: rng.IntN(2) == 0,
			PQKeyShare: rng.IntN(2) == 0, PQOffered: rng.IntN(2) == 0, MLDSA: rng.IntN(2) == 0, HelloSplit: rng.IntN(2) == 0, ResetHopDiffers: rng.IntN(2) == 0,
			FlightBytes: n(5000), Up: flow.Bracket{Delivered: n(1500), Lost: n(1500)},
			Down: flow.Bracket{Delivered: n(1500), Lost: n(1500)}, Retransmits: n(9), TooBig: n(3), TooBigMTU: n(1500), Fragments: n(5),
		}, LostPackets: n(9)}
		if rng.IntN(2) == 0 {
			h.ClientAtServer = &a
		}
		hs = append(hs, h)
	}
	res, err := File(serverSideStall(t, true).file("server.pcap"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	tooLate := &Result{Handshakes: []Handshake{{Handshake: flow.Handshake{Start: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}}}
	for name, r := range map[string]*Result{
		"crafted":       {Mode: ModeSingle, Handshakes: hs, Outcomes: map[diagnose.Outcome]int{"x": 1}},
		"one":           {Handshakes: hs[:1]},
		"empty list":    {Handshakes: []Handshake{}},
		"no list":       {},
		"analysis":      res,
		"year too late": tooLate,
	} {
		var want, got bytes.Buffer
		wantErr := encodeIndented(&want, r)
		gotErr := r.WriteJSON(&got)
		if (wantErr == nil) != (gotErr == nil) || !bytes.Equal(got.Bytes(), want.Bytes()) {
			i := 0
			for i < min(got.Len(), want.Len()) && got.Bytes()[i] == want.Bytes()[i] {
				i++
			}
			t.Errorf("%s: WriteJSON differs from json.Encoder at byte %d (errors %v, %v):\n%s\nwant:\n%s", name, i, gotErr, wantErr,
				got.Bytes()[max(0, i-200):min(got.Len(), i+200)], want.Bytes()[max(0, i-200):min(want.Len(), i+200)])
		}
	}
}
