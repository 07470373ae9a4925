package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/internal/alertmanagertest"
	"github.com/mtuscope/mtuscope/internal/asntest"
	"github.com/mtuscope/mtuscope/internal/testnet"
	"github.com/mtuscope/mtuscope/internal/tlstraffic"
)

// Ports in the server's namespace (each test has its own namespace).
const (
	promAddr  = "127.0.0.1:19190"
	amAddr    = "127.0.0.1:19193"
	serveHTTP = ":18080"
	serveAdm  = "127.0.0.1:19090"
)

// watchAdmin is the admin address of watch node i.
func watchAdmin(i int) string { return fmt.Sprintf("127.0.0.1:%d", 19091+i) }

// prometheusConfig scrapes the two watch nodes and serve every 2 s,
// evaluates the shipped rules and sends alerts to Alertmanager.
func prometheusConfig(rules string) string {
	return fmt.Sprintf(`global:
  scrape_interval: 2s
  evaluation_interval: 2s
rule_files: [%q]
alerting:
  alertmanagers:
    - static_configs: [{targets: [%q]}]
scrape_configs:
  - job_name: mtuscope-watch
    static_configs: [{targets: [%q, %q]}]
  - job_name: mtuscope-serve
    static_configs: [{targets: [%q]}]
`, rules, amAddr, watchAdmin(0), watchAdmin(1), serveAdm)
}

// promQuery runs an instant query and returns its result vector.
func promQuery(c *http.Client, q string) ([]json.RawMessage, error) {
	resp, err := c.Get("http://" + promAddr + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", b, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %q: %s", q, r.Error)
	}
	return r.Data.Result, nil
}

// dashboardQueries returns every panel query of the shipped dashboard,
// with Grafana's $__rate_interval replaced by a range that spans several
// 2 s scrapes.
func dashboardQueries(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("grafana/mtuscope.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	qs := map[string]string{}
	for _, p := range d.Panels {
		for i, tg := range p.Targets {
			qs[fmt.Sprintf("%s #%d", p.Title, i+1)] = strings.ReplaceAll(tg.Expr, "$__rate_interval", "30s")
		}
	}
	if len(qs) < 8 {
		t.Fatalf("the dashboard has only %d queries", len(qs))
	}
	return qs
}

// TestPrometheusLive is issue 11's live check. Two customer networks, an
// S2 black hole (AS64496) and a clean one (AS64497), each seen by its own
// watch node (one captures the server's port towards network 0, the other
// towards network 1), so no node alone can compare the two: Debian's
// Prometheus scrapes both nodes and serve, evaluates the shipped rules
// over the fleet's sum, and the network alert for the black-holed network
// (and none for the clean one) must reach Debian's Alertmanager. Then
// every query of the shipped dashboard must run and return data.
func TestPrometheusLive(t *testing.T) {
	testnet.Require(t)
	testnet.RequireTools(t, "prometheus", "nginx", "curl")
	amBin := alertmanagertest.Binary(t)
	promBin, _ := exec.LookPath("prometheus")
	sc := testnet.Scenario{Name: "S11-fleet", Slug: "fleet", Networks: []testnet.Faults{
		{MidMTU: 1400, NoICMP: true, DropFragments: true}, // S2
		{}, // clean
	}}
	n := testnet.New(t, sc)
	ng := n.StartNginx(t)
	bin := testnet.Mtuscope(t)
	dir := t.TempDir()
	rules, err := filepath.Abs("prometheus/rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "asn.db")
	asntest.WriteTestbed(t, db, 64496, 2)
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	inNS := &http.Client{Transport: &http.Transport{DialContext: n.Server.DialContext}, Timeout: 10 * time.Second}
	start := func(name string, args ...string) *testnet.Proc {
		t.Helper()
		p, err := n.Server.Start(name, args...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Stop() })
		return p
	}

	am := start(amBin, alertmanagertest.Args(write("am.yml", alertmanagertest.Config("http://127.0.0.1:9/")),
		filepath.Join(dir, "am"), amAddr)...)
	if err := alertmanagertest.WaitReady(inNS, "http://"+amAddr, 20*time.Second); err != nil {
		t.Fatalf("alertmanager: %v\n%s", err, am.Stderr)
	}
	wcfg := write("watch.yaml", "handshake_timeout: 5s\nmonitor:\n  bucket: 10s\n")
	var watches []*testnet.Proc
	for i := range 2 {
		watches = append(watches, start(bin, "watch", "-i", fmt.Sprintf("n%d", i), "--port", "443", "--asn-db", db,
			"--config", wcfg, "--data-dir", filepath.Join(dir, fmt.Sprintf("watch%d", i)), "--admin", watchAdmin(i)))
	}
	srv := start(bin, "serve", "--data-dir", filepath.Join(dir, "serve"), "--https", ":18443", "--http", serveHTTP,
		"--admin", serveAdm, "--rung-port", "0", "--rung-probe-port", "0", "--echo", "")
	prom := start(promBin, "--config.file="+write("prometheus.yml", prometheusConfig(rules)),
		"--storage.tsdb.path="+filepath.Join(dir, "prom"), "--web.listen-address="+promAddr)
	if err := alertmanagertest.WaitReady(inNS, "http://"+promAddr, 30*time.Second); err != nil {
		t.Fatalf("prometheus: %v\n%s", err, prom.Stderr)
	}
	for _, a := range []string{watchAdmin(0), watchAdmin(1), serveAdm} {
		if err := waitHealthy(inNS, "http://"+a+"/healthz", 30*time.Second); err != nil {
			t.Fatalf("%s: %v\nwatch 0: %s\nwatch 1: %s\nserve: %s", a, err, watches[0].Stderr, watches[1].Stderr, srv.Stderr)
		}
	}

	// A report stored on serve, for the dashboard's serve panels.
	pctx, pcancel := context.WithTimeout(context.Background(), 90*time.Second)
	res := n.Clients[1].Run(pctx, bin, "probe", "--timeout", "60s", "--no-assist", "--submit", "http://"+n.Server.V4.String()+serveHTTP+"/",
		n.Server.V4.String()+":443")
	pcancel()
	if !strings.Contains(string(res.Stderr), "report stored") {
		t.Fatalf("probe --submit: %s", res)
	}

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	tlstraffic.Run(ctx, n, ng, &wg)
	defer func() { stop(); wg.Wait() }()
	began := time.Now()

	// The fleet alert for AS64496 reaches Alertmanager; nothing for AS64497.
	var fired alertmanagertest.GettableAlert
	for found := false; !found; time.Sleep(2 * time.Second) {
		if time.Since(began) > 4*time.Minute {
			q, _ := promQuery(inNS, `{__name__=~"mtuscope:network_.*"}`)
			t.Fatalf("no alert in Alertmanager after %s; recorded series: %s\nprometheus: %s", time.Since(began), q, prom.Stderr)
		}
		as, err := alertmanagertest.ActiveAlerts(inNS, "http://"+amAddr)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			switch {
			case a.Labels["alertname"] == "MtuscopeNetworkHandshakesStalled" && a.Labels["network"] == "AS64496":
				fired, found = a, true
			case a.Labels["alertname"] == "MtuscopeNetworkHandshakesStalled":
				t.Fatalf("alert for a healthy network: %+v", a)
			}
		}
	}
	t.Logf("MtuscopeNetworkHandshakesStalled for AS64496 in Alertmanager %s after the traffic started: %s",
		time.Since(began).Round(time.Second), fired.Annotations["description"])
	if fired.Annotations["runbook_url"] == "" || !strings.Contains(fired.Annotations["fix"], "tcp_mtu_probing") {
		t.Errorf("alert annotations incomplete: %+v", fired.Annotations)
	}
	// The fleet view joins both nodes: each saw only its own network (the
	// black-holed one's node only stalls, the clean one's only completes).
	for q, want := range map[string]string{
		`count by (network) (count by (network, instance) (mtuscope_network_handshakes_total{network=~"AS6449[67]"} > 0))`: "1",
		`count(count by (instance) (mtuscope_network_handshakes_total{network=~"AS6449[67]"} > 0))`:                        "2",
		`count(mtuscope:network_judged:increase10m{network=~"AS6449[67]"} > 0)`:                                            "2",
	} {
		r, err := promQuery(inNS, q)
		if err != nil || len(r) == 0 {
			t.Errorf("%s: %s %v", q, r, err)
		}
		for _, x := range r {
			if !strings.Contains(string(x), `"`+want+`"]`) {
				t.Errorf("%s: %s, want %s", q, x, want)
			}
		}
	}
	if as, _ := alertmanagertest.ActiveAlerts(inNS, "http://"+amAddr); len(as) > 0 {
		for _, a := range as {
			if a.Labels["network"] == "AS64497" || a.Labels["alertname"] == "MtuscopeServerHandshakesFailing" {
				t.Errorf("unexpected alert: %+v", a)
			}
		}
	}

	if r, err := promQuery(inNS, `sum by (network, outcome) (mtuscope_network_handshakes_total > 0)`); err == nil {
		t.Logf("handshakes by network and outcome: %s", r)
	}

	// Every dashboard query parses and returns data.
	for name, q := range dashboardQueries(t) {
		r, err := promQuery(inNS, q)
		switch {
		case err != nil:
			t.Errorf("panel %s: %v", name, err)
		case len(r) == 0:
			t.Errorf("panel %s: %q returns nothing", name, q)
		}
	}
}

// waitHealthy polls u until it answers 200.
func waitHealthy(c *http.Client, u string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		resp, err := c.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}
