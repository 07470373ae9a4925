package cli

import (
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/internal/asntest"
	"github.com/mtuscope/mtuscope/internal/craftpcap"
	"github.com/mtuscope/mtuscope/internal/testnet"
)

func TestWatchUsage(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "watch.yml")
	if err := os.WriteFile(cfg, []byte("interface: eth0\nports: [443]\nmonitor:\n  top_n: 20\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yml")
	if err := os.WriteFile(bad, []byte("interface: eth0\nalert_manager: http://x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "watch", "--config", cfg, "--check-config")
	if code != ExitOK || !strings.Contains(out, "configuration OK") || !strings.Contains(out, "top 20") {
		t.Fatalf("check-config: exit %d, %q %q", code, out, errOut)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown key", []string{"watch", "--config", bad, "--check-config"}, `line 2: alert_manager: unknown key (did you mean "alertmanager"?)`},
		{"no source", []string{"watch"}, "-i IFACE or --read FILE"},
		{"both sources", []string{"watch", "-i", "lo", "--read", "x.pcap"}, "exclude each other"},
		{"json live", []string{"watch", "-i", "lo", "--json"}, "--json goes with --read"},
		{"two writers on stdout", []string{"watch", "--read", "x.pcap", "--json", "--handshake-log", "-"}, "standard output"},
		{"missing file", []string{"watch", "--read", filepath.Join(dir, "none.pcap"), "--admin", "", "--asn-db", filepath.Join(dir, "asn.db")}, "none.pcap"},
		{"missing file, a comma in its name", []string{"watch", "--read", filepath.Join(dir, "a,b.pcap"), "--admin", "", "--asn-db", filepath.Join(dir, "asn.db")}, "a,b.pcap"},
		{"bad port", []string{"watch", "--read", "x.pcap", "--port", "0"}, "ports: 0"},
		{"bad url", []string{"watch", "--read", "x.pcap", "--alertmanager", "am:9093"}, "alertmanager"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := run(t, tc.args...)
			if code != ExitUsage || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q, want %d and %q", code, errOut, ExitUsage, tc.want)
			}
		})
	}
}

// Without CAP_NET_RAW live capture stops at once with a message that
// names the capability (run as an unprivileged user via setpriv).
func TestWatchNeedsCapNetRaw(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to drop to an unprivileged user")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("no setpriv")
	}
	bin := testnet.Mtuscope(t)
	dir, err := os.MkdirTemp("", "mtuscope-watch-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o777) // the unprivileged user's data directory
	cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
		bin, "watch", "-i", "lo", "--admin", "", "--data-dir", dir)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != ExitUsage || !strings.Contains(string(out), "CAP_NET_RAW") {
		t.Fatalf("%v: %s", err, out)
	}
}

// watch --read --json on a small crafted capture: three connections from
// one /24 that send half a ClientHello and stop. The document has the
// documented fields; nothing alerts (exit 0).
func TestWatchReadJSON(t *testing.T) {
	dir := t.TempDir()
	pcap := filepath.Join(dir, "half.pcap")
	w := craftpcap.NewWriter(t, pcap)
	start := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	server := [4]byte{203, 0, 113, 10}
	hello := []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03}
	for i := 0; i < 3; i++ {
		c := [4]byte{192, 0, 2, byte(10 + i)}
		ts := start.Add(time.Duration(i) * time.Second)
		port := uint16(40000 + i)
		w.TCP(t, ts, c, server, port, 443, 1000, 0, craftpcap.FlagSYN, nil)
		w.TCP(t, ts.Add(time.Millisecond), server, c, 443, port, 5000, 1001, craftpcap.FlagSYN|craftpcap.FlagACK, nil)
		w.TCP(t, ts.Add(2*time.Millisecond), c, server, port, 443, 1001, 5001, craftpcap.FlagACK, nil)
		w.TCP(t, ts.Add(3*time.Millisecond), c, server, port, 443, 1001, 5001, craftpcap.FlagACK|craftpcap.FlagPSH, hello)
	}
	w.Close(t)
	code, out, errOut := run(t, "watch", "--read", pcap, "--json", "--admin", "", "--asn-db", filepath.Join(dir, "asn.db"))
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var doc struct {
		SchemaVersion int `json:"schema_version"`
		Networks      []struct {
			Network    string         `json:"network"`
			ASN        *uint32        `json:"asn"`
			Org        *string        `json:"org"`
			Handshakes int            `json:"handshakes"`
			Outcomes   map[string]int `json:"outcomes"`
			Alert      *bool          `json:"alert"`
			Verdict    string         `json:"verdict"`
			Direction  string         `json:"direction"`
			PathMTU    *struct {
				UpDelivered int `json:"up_delivered"`
			} `json:"path_mtu"`
		} `json:"networks"`
		Alerts  []any          `json:"alerts"`
		Totals  map[string]int `json:"totals"`
		Capture struct {
			Packets int `json:"packets"`
		} `json:"capture"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if doc.SchemaVersion != 1 || len(doc.Networks) != 1 || doc.Alerts == nil || len(doc.Alerts) != 0 || doc.Capture.Packets != 12 {
		t.Fatalf("document %+v", doc)
	}
	n := doc.Networks[0]
	if n.Network != "192.0.2.0/24" || n.ASN == nil || *n.ASN != 0 || n.Org == nil || n.Handshakes != 3 || n.Outcomes["timeout"] != 3 ||
		n.Alert == nil || *n.Alert || n.Verdict != "ok" || n.Direction != "none" || n.PathMTU == nil {
		t.Errorf("network %+v", n)
	}
	code, out, _ = run(t, "watch", "--read", pcap, "--admin", "", "--asn-db", filepath.Join(dir, "asn.db"))
	if code != ExitOK || !strings.Contains(out, "192.0.2.0/24") || !strings.Contains(out, "no alerts") {
		t.Errorf("summary: exit %d\n%s", code, out)
	}
}

// watch --read on a crafted capture of four customer networks in one
// minute, as in issue 15: AS64496 loses every server flight (20 of 20
// stalled), AS64497 too (12 of 12), AS64498 and AS64499 complete (35 and
// 30). Both failing networks alert, each compared with the two healthy
// ones (65 of 65), and neither healthy one does. AS64496's organisation
// name in the ASN data holds terminal escape sequences and bidi controls:
// the summary shows them escaped, as asn lookup does, and so do the JSON
// alerts.
func TestWatchReadTwoFailing(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "asn.db")
	evil := "Evil\x1b]0;pwned\x07\x1b[2J Net\u202egnp.exe\u2066"
	asntest.WriteTestbedOrgs(t, db, 64496, evil, "Customer 2", "Customer 3", "Customer 4")
	pcap := filepath.Join(dir, "four.pcap")
	hs := craftpcap.NewConversations(t, 1, netip.MustParseAddrPort("203.0.113.10:443"))
	start := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	for i, n := range []int{20, 12, 35, 30} {
		for j := range n {
			client := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(16*i + 1 + j%14)}), uint16(40000+j))
			ts := start.Add(time.Duration(j) * 45 * time.Second / time.Duration(n)).Add(time.Duration(i) * 10 * time.Millisecond)
			if i < 2 {
				hs.StalledFlight(ts, client, 1300)
			} else {
				hs.Completed(ts, client)
			}
		}
	}
	w := craftpcap.NewWriter(t, pcap)
	hs.Write(t, w)
	w.Close(t)

	code, out, errOut := run(t, "watch", "--read", pcap, "--admin", "", "--asn-db", db)
	t.Logf("summary:\n%s", out)
	if code != ExitProblem {
		t.Fatalf("exit %d, want %d (alerts fired): %s", code, ExitProblem, errOut)
	}
	firing := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], "AS") {
			firing[f[0]] = strings.Contains(line, "firing")
		}
	}
	want := map[string]bool{"AS64496": true, "AS64497": true, "AS64498": false, "AS64499": false}
	if !reflect.DeepEqual(firing, want) {
		t.Errorf("firing %v, want %v", firing, want)
	}
	if strings.ContainsAny(out, "\x1b\x07\u202e\u2066") {
		t.Errorf("raw control characters in the summary: %q", out)
	}
	if !strings.Contains(out, `Evil\x1b]0;pwned\x07\x1b[2J Net\u202egnp.exe\u2066`) {
		t.Errorf("the organisation name is not shown escaped")
	}

	code, out, errOut = run(t, "watch", "--read", pcap, "--json", "--admin", "", "--asn-db", db)
	if code != ExitProblem {
		t.Fatalf("--json: exit %d: %s", code, errOut)
	}
	var doc WatchDocument
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, a := range doc.Alerts {
		s := a.Stats
		t.Logf("%s %s: %d/%d completed, reference %d networks %d handshakes at %.3f (lower %.4f, %d left out), shrunk %.3f, p = %.3g",
			a.State, a.Network, s.Completed, s.Handshakes, s.OthersNetworks, s.Others, s.OthersRate, s.OthersLower, s.Excluded, s.Shrunk, s.PValue)
		got[a.Network] = a.State
		if s.Others != 65 || s.OthersRate != 1 {
			t.Errorf("%s compared with %d handshakes at %.3f, want the healthy 65 at 1", a.Network, s.Others, s.OthersRate)
		}
		if strings.ContainsAny(a.Summary+a.Org, "\x1b\x07\u202e\u2066") {
			t.Errorf("raw control characters in the alert: %q %q", a.Summary, a.Org)
		}
	}
	if !reflect.DeepEqual(got, map[string]string{"AS64496": "firing", "AS64497": "firing"}) {
		t.Errorf("alerts %v, want AS64496 and AS64497 firing", got)
	}
}
