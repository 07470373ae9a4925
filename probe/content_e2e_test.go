//go:build linux

package probe_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/internal/testnet"
)

// variantDoc is a tls_variant entry of the JSON document.
type variantDoc struct {
	Name   string `json:"name"`
	Params struct {
		Variant string `json:"variant"`
		Attempt int    `json:"attempt"`
	} `json:"params"`
	Outcome string `json:"outcome"`
	Result  struct {
		ResetBy string `json:"reset_by"`
	} `json:"result"`
}

func (d probeDoc) variants() []variantDoc {
	var out []variantDoc
	for _, raw := range d.Tests {
		var v variantDoc
		if json.Unmarshal(raw, &v) == nil && v.Name == "tls_variant" {
			out = append(out, v)
		}
	}
	return out
}

// TestProbeContentScenarios runs the real binary through each content
// device of the testbed (S13-S17), in IPv4 and IPv6, against Debian's
// nginx: each names its device's cause and only it (with the black hole
// beside it in S17), with its fixes, and the whole run's time is logged.
func TestProbeContentScenarios(t *testing.T) {
	testnet.Require(t)
	for _, tc := range []struct {
		scenario string
		family   int
		fixes    []string
		variant  string // the variant the device refuses
	}{
		{"S13", 4, []string{"device_allow_pq", "go_disable_mlkem", "openssl_groups_no_pq", "chrome_pq_policy"}, "pq_keyshare"},
		{"S13", 6, []string{"device_allow_pq", "go_disable_mlkem"}, "pq_keyshare"},
		{"S14", 4, []string{"device_allow_mldsa", "client_mldsa"}, "mldsa_sigalgs"},
		{"S14", 6, []string{"device_allow_mldsa"}, "mldsa_sigalgs"},
		{"S15", 4, []string{"device_reassemble", "go_disable_mlkem"}, "two_segments"},
		{"S15", 6, []string{"device_reassemble"}, "two_segments"},
		{"S16", 4, []string{"device_length_window"}, "length_256_511"},
		{"S16", 6, []string{"device_length_window"}, "length_256_511"},
		{"S17", 4, []string{"clamp_mss", "device_allow_pq", "go_disable_mlkem"}, "pq_keyshare"},
		{"S17", 6, []string{"clamp_mss", "device_allow_pq"}, "pq_keyshare"},
	} {
		t.Run(fmt.Sprintf("%s/v%d", tc.scenario, tc.family), func(t *testing.T) {
			t.Parallel()
			sc := testnet.Preset(tc.scenario)
			n := testnet.New(t, sc)
			n.StartNginx(t)
			doc, code, took := probeIn(t, n, tc.family)
			want := sc.Want
			causes := append([]string{want.Verdict}, want.Also...)
			t.Logf("%s v%d: %s %d %s causes %v in %v (exit %d, elapsed %d ms, %d variants)", tc.scenario, tc.family,
				doc.Verdict, doc.PathMTU, doc.Direction, doc.Causes, took, code, doc.ElapsedMS, len(doc.variants()))
			for _, f := range doc.Findings {
				t.Logf("  %s: %s", f.Code, f.Detail)
			}
			if doc.Verdict != want.Verdict || doc.PathMTU != want.PathMTU || doc.Direction != want.Direction || !slices.Equal(doc.Causes, causes) {
				for _, raw := range doc.Tests {
					var b bytes.Buffer
					json.Compact(&b, raw)
					if !strings.Contains(b.String(), `"outcome":"completed"`) {
						t.Logf("test: %s", b.String())
					}
				}
				t.Errorf("got %s / %d / %s / %v, want %s / %d / %s / %v", doc.Verdict, doc.PathMTU, doc.Direction, doc.Causes,
					want.Verdict, want.PathMTU, want.Direction, causes)
			}
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			// Only the device's cause: no other verdict among the findings.
			for _, f := range doc.Findings {
				if strings.HasPrefix(f.Code, "clienthello_") || f.Code == "pmtud_blackhole" || f.Code == "tls_failed" {
					if !slices.Contains(causes, f.Code) {
						t.Errorf("finding %s, not a cause of %s", f.Code, tc.scenario)
					}
				}
			}
			for _, fix := range tc.fixes {
				if !slices.ContainsFunc(doc.Fixes, func(f struct {
					Code     string   `json:"code"`
					Commands []string `json:"commands"`
				}) bool {
					return f.Code == fix
				}) {
					t.Errorf("no fix %s", fix)
				}
			}
			// The refused variant failed every attempt; a reset was the
			// path's (the device dropped the hello and answered for the
			// server).
			failed := 0
			for _, v := range doc.variants() {
				if v.Params.Variant != tc.variant {
					continue
				}
				if v.Outcome == "completed" {
					t.Errorf("%s completed in attempt %d", tc.variant, v.Params.Attempt)
				}
				if v.Outcome == "reset" && v.Result.ResetBy != "path" {
					t.Errorf("%s reset, by %q: want path", tc.variant, v.Result.ResetBy)
				}
				failed++
			}
			if failed < 2 {
				t.Errorf("%s failed %d times, want at least 2", tc.variant, failed)
			}
			if mb := n.Middleboxes[0]; mb != nil {
				t.Logf("device: %d hellos read, %d reset", len(mb.Hellos("")), len(mb.Hellos("reset")))
			}
			if took > 5*time.Second {
				t.Logf("slower than the 5 s goal: %v", took)
			}
		})
	}
}
