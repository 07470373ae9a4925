package analyze

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/flow"
	"github.com/mtuscope/mtuscope/watch"
)

// AgreeWithWatch is agreeWithWatch for the tests of package analyze_test.
var AgreeWithWatch = agreeWithWatch

// agreeWithWatch replays a capture through watch (watch --read) and checks
// that analyze's result on the same capture lists the same handshakes,
// field for field (outcome, detail, sizes, brackets, retransmissions,
// ICMP), and that each handshake the tracker calls stalled is one where
// analyze's own record of the flow's wire packets found a loss: the two
// read one model of the connection.
func agreeWithWatch(t *testing.T, what, path string, res *Result) {
	t.Helper()
	cfg := watch.Defaults()
	cfg.DataDir = t.TempDir()
	var got []flow.Handshake
	w, err := watch.New(cfg, watch.Options{Emit: func(h flow.Handshake) { got = append(got, h) }})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Replay(context.Background(), []string{path}); err != nil {
		t.Fatalf("%s: watch --read: %v", what, err)
	}
	text := func(h flow.Handshake) string {
		h.Verified = false // not in analyze's JSON
		b, err := json.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	type start struct {
		client, server string
		at             int64
	}
	byStart := map[start]flow.Handshake{}
	for _, h := range got {
		byStart[start{h.Client.String(), h.Server.String(), h.Start.UnixNano()}] = h
	}
	if len(got) != len(res.Handshakes) {
		t.Errorf("%s: watch --read classified %d handshakes, analyze lists %d", what, len(got), len(res.Handshakes))
	}
	for _, a := range res.Handshakes {
		h, ok := byStart[start{a.Client.String(), a.Server.String(), a.Start.UnixNano()}]
		switch {
		case !ok:
			t.Errorf("%s: analyze lists %s -> %s (%s), watch --read classified no such handshake", what, a.Client, a.Server, a.Outcome)
		case text(h) != text(a.Handshake):
			t.Errorf("%s: analyze and watch --read differ on one handshake:\n  analyze %s\n  watch   %s", what, text(a.Handshake), text(h))
		}
		if (a.Outcome == diagnose.StalledClientHello || a.Outcome == diagnose.StalledServerFlight) && a.LostPackets == 0 {
			t.Errorf("%s: %s -> %s is %s (%s), but analyze's record of its wire packets shows no loss", what, a.Client, a.Server, a.Outcome, a.Detail)
		}
	}
}
