package probe_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/internal/testnet"
)

// probeDoc is the part of `mtuscope probe --json` the end-to-end tests read.
type probeDoc struct {
	Target    string `json:"target"`
	Address   string `json:"address"`
	Family    int    `json:"family"`
	Verdict   string `json:"verdict"`
	PathMTU   int    `json:"path_mtu"`
	Direction string `json:"direction"`
	Findings  []struct {
		Code   string `json:"code"`
		Detail string `json:"detail"`
	} `json:"findings"`
	Fixes []struct {
		Code     string   `json:"code"`
		Commands []string `json:"commands"`
	} `json:"fixes"`
	Tests     []json.RawMessage `json:"tests"`
	Skipped   []string          `json:"skipped"`
	ElapsedMS int64             `json:"elapsed_ms"`
}

func (d probeDoc) hasFinding(code string) bool {
	for _, f := range d.Findings {
		if f.Code == code {
			return true
		}
	}
	return false
}

// probeIn runs the real binary in the net's client namespace against the
// server's address of the family and returns its JSON document, exit code
// and wall time.
func probeIn(t testing.TB, n *testnet.Net, family int, extra ...string) (probeDoc, int, time.Duration) {
	t.Helper()
	bin := testnet.Mtuscope(t)
	ng := n.Server.Addr(family)
	args := append([]string{"probe", "--json", "--sni", testnet.ServerName}, extra...)
	if family == 6 {
		args = append(args, "-6", "["+ng.String()+"]:443")
	} else {
		args = append(args, "-4", ng.String()+":443")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res := n.Client.Run(ctx, bin, args...)
	var doc probeDoc
	if err := json.Unmarshal(res.Stdout, &doc); err != nil {
		t.Fatalf("probe output is not JSON: %v\n%s", err, res)
	}
	if res.Duration > 4*time.Second {
		// Say where the time went.
		for _, raw := range doc.Tests {
			var tt struct {
				DurationMS float64 `json:"duration_ms"`
			}
			if json.Unmarshal(raw, &tt) == nil && tt.DurationMS > 1000 {
				t.Logf("slow test: %s", raw)
			}
		}
	}
	return doc, res.ExitCode, res.Duration
}

func TestProbeScenarios(t *testing.T) {
	for _, tc := range []struct {
		scenario string
		family   int
	}{
		{"S1", 4},
		{"S1", 6},
	} {
		t.Run(tc.scenario+"/v"+string(rune('0'+tc.family)), func(t *testing.T) {
			t.Parallel()
			sc := testnet.Preset(tc.scenario)
			n := testnet.New(t, sc)
			n.StartNginx(t)
			doc, code, took := probeIn(t, n, tc.family)
			t.Logf("%s v%d: %s %d %s in %v (exit %d)", tc.scenario, tc.family, doc.Verdict, doc.PathMTU, doc.Direction, took, code)
			for _, f := range doc.Findings {
				t.Logf("  %s: %s", f.Code, f.Detail)
			}
			if doc.Verdict != sc.Want.Verdict || doc.PathMTU != sc.Want.PathMTU || doc.Direction != sc.Want.Direction {
				t.Errorf("got %s / %d / %s, want %s / %d / %s", doc.Verdict, doc.PathMTU, doc.Direction,
					sc.Want.Verdict, sc.Want.PathMTU, sc.Want.Direction)
			}
		})
	}
}
