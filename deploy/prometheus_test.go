package deploy

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/mtuscope/mtuscope/internal/testnet"
)

// TestPrometheusRules checks the shipped rules with promtool and runs
// their unit tests (prometheus/rules_test.yml): the story's network
// alerts; a lossy healthy network, a tiny one and a big healthy one do
// not; two networks failing at once both alert, each against the healthy
// ones; the largest customer failing alone is a network alert; a
// server-wide failure is one alert; capture loss, a silent node and a
// server that cannot store each alert.
func TestPrometheusRules(t *testing.T) {
	testnet.RequireTools(t, "promtool")
	for _, args := range [][]string{
		{"check", "rules", "prometheus/rules.yml"},
		{"test", "rules", "prometheus/rules_test.yml"},
	} {
		out, err := exec.Command("promtool", args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
