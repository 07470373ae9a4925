package watch

import (
	"fmt"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/flow"
	"github.com/mtuscope/mtuscope/tlswire"
)

// TestViewFeatureAlert: the operator view shows a feature alert with its
// figures, verdict and fixes (the template reaches its fields only when
// one exists).
func TestViewFeatureAlert(t *testing.T) {
	cfg := Defaults()
	cfg.DataDir = t.TempDir()
	w, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	start := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	srv := netip.MustParseAddrPort("203.0.113.10:443")
	var i int
	add := func(prefix string, n int, pq bool, o diagnose.Outcome) {
		for range n {
			i++
			at := start.Add(time.Duration(i) * 100 * time.Millisecond)
			h := flow.Handshake{Client: netip.MustParseAddrPort(fmt.Sprintf("%s.%d:%d", prefix, 2+i%10, 30000+i)), Server: srv,
				Family: 4, Start: at, End: at.Add(10 * time.Millisecond), Outcome: o, Verified: true, HelloBytes: 271,
				HelloSegments: 1, HelloWhole: true, HelloRead: tlswire.ReadKeyShare | tlswire.ReadGroups | tlswire.ReadSigAlgs}
			if pq {
				h.HelloBytes, h.HelloSegments, h.PQKeyShare, h.HelloSplit, h.ResetHopDiffers = 1503, 2, true, true, o == diagnose.Reset
			}
			w.Monitor.Observe(h)
		}
	}
	add("192.0.2", 12, true, diagnose.Reset)
	add("192.0.2", 15, false, diagnose.Completed)
	for _, p := range []string{"198.51.100", "100.64.0"} {
		add(p, 20, true, diagnose.Completed)
		add(p, 10, false, diagnose.Completed)
	}
	w.Monitor.Advance(start.Add(2 * time.Minute))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "http://localhost/", nil)
	w.Handler().ServeHTTP(rec, req)
	body := rec.Body.String()
	for _, want := range []string{"hellos with pq_keyshare: 0 completed, 12 failed", "clienthello_pq_rejected",
		"GODEBUG=tlsmlkem=0", "PostQuantumKeyAgreementEnabled", "12 reset by something on the path"} {
		if !strings.Contains(body, want) {
			t.Errorf("operator view lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("%s", body)
	}
}
