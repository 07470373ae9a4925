package watch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/internal/asntest"
	"github.com/mtuscope/mtuscope/internal/craftpcap"
	"github.com/mtuscope/mtuscope/internal/testnet"
	"github.com/mtuscope/mtuscope/internal/tlstraffic"
	"github.com/mtuscope/mtuscope/monitor"
)

// S18 live, case (a): watch captures on the server's bridge while an
// attacker in a clean network sends 2,000 one-segment ClientHellos
// forged from 2,000 /48s (no SYN), and only then a network behind a
// path-MTU black hole (S2) starts its real handshakes. The forged hellos
// are counted unverified; the failing network alerts, alone.
func TestTestbedSpoofedHellos(t *testing.T) {
	testnet.Require(t)
	testnet.RequireTools(t, "nginx", "curl")
	sc := testnet.Scenario{Name: "S18", Slug: "spoof", Networks: []testnet.Faults{
		{MidMTU: 1400, NoICMP: true, DropFragments: true}, {}, {}}}
	n := testnet.New(t, sc)
	ng := n.StartNginx(t)
	bin := testnet.Mtuscope(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "asn.db")
	asntest.WriteTestbed(t, db, 64496, len(sc.Networks))
	cfgFile := filepath.Join(dir, "watch.yaml")
	if err := os.WriteFile(cfgFile, []byte("handshake_timeout: 5s\nmonitor:\n  bucket: 10s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := n.Server.Start(bin, "watch", "-i", "br0", "--port", "443", "--asn-db", db, "--config", cfgFile,
		"--data-dir", dir, "--admin", "127.0.0.1:19091")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	inNS := &http.Client{Transport: &http.Transport{DialContext: n.Server.DialContext}, Timeout: 10 * time.Second}
	get := func(path string) []byte {
		t.Helper()
		resp, err := inNS.Get("http://127.0.0.1:19091" + path)
		if err != nil {
			t.Fatalf("%v\n%s", err, w.Stderr)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return b
	}
	waitWatchAdmin(t, inNS, w)

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	tlstraffic.From(ctx, n, n.Clients[1], ng, &wg)
	tlstraffic.From(ctx, n, n.Clients[2], ng, &wg)

	const forged = 2000
	sent := forgeHellos(t, n.Clients[1], netip.AddrPortFrom(n.Server.V6, 443), forged)
	t.Logf("%d forged hellos sent from %s", sent, n.Clients[1])
	// Wait until watch has classified them (5 s of handshake timeout):
	// counted unverified, or, by a monitor that takes them for evidence,
	// each its own network.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(time.Second) {
		m := string(get("/metrics"))
		u, tracked := sumSeries(m, "mtuscope_unverified_handshakes_total"), sumSeries(m, "mtuscope_networks_tracked")
		if u >= forged*95/100 || tracked >= forged {
			t.Logf("forged hellos classified: %d unverified, %d networks tracked", u, tracked)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60 s: %d unverified, %d networks tracked\n%s", u, tracked, w.Stderr)
		}
	}

	tlstraffic.From(ctx, n, n.Clients[0], ng, &wg)
	start := time.Now()
	var snap monitor.Snapshot
	for {
		if err := json.Unmarshal(get("/api/networks"), &snap); err != nil {
			t.Fatal(err)
		}
		if firing(snap)["network/AS64496"] {
			break
		}
		if time.Since(start) > 120*time.Second {
			for _, x := range snap.Networks {
				if x.ASN != 0 {
					t.Logf("%s: %v alert=%v", x.Network, x.Outcomes, x.Alert)
				}
			}
			t.Fatalf("no alert for the failing network AS64496 %s after its traffic started (%d networks tracked, %d folded into other)",
				time.Since(start).Round(time.Second), len(snap.Networks), snap.Folded)
		}
		time.Sleep(time.Second)
	}
	t.Logf("AS64496 alerts %s after its traffic started", time.Since(start).Round(time.Second))
	for _, x := range snap.Networks {
		t.Logf("%s: %v alert=%v %s %s", x.Network, x.Outcomes, x.Alert, x.Verdict, x.Direction)
	}
	if f := firing(snap); len(f) != 1 {
		t.Errorf("alerts fired %v, want AS64496 alone", f)
	}
	m := string(get("/metrics"))
	t.Logf("unverified %d, folded %d, networks tracked %d", sumSeries(m, "mtuscope_unverified_handshakes_total"),
		sumSeries(m, "mtuscope_networks_folded_handshakes_total"), sumSeries(m, "mtuscope_networks_tracked"))
	if len(snap.Networks) != 3 || snap.Folded != 0 {
		t.Errorf("%d networks, %d handshakes folded: want the three real networks alone", len(snap.Networks), snap.Folded)
	}
}

// firing returns the alerts that fired, by kind and network.
func firing(s monitor.Snapshot) map[string]bool {
	f := map[string]bool{}
	for _, a := range s.Alerts {
		if a.State == monitor.Firing {
			f[a.Kind+"/"+a.Network] = true
		}
	}
	return f
}

// sumSeries adds the values of every series of the metric name.
func sumSeries(metrics, name string) int {
	total := 0.0
	for _, l := range strings.Split(metrics, "\n") {
		rest, ok := strings.CutPrefix(l, name)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		if v, err := strconv.ParseFloat(rest[strings.LastIndexByte(rest, ' ')+1:], 64); err == nil {
			total += v
		}
	}
	return int(total)
}

// forgeHellos sends, from host h's namespace through a raw socket, n
// one-segment ClientHellos to server, each from its own /48 of
// 2001:db8:8000::/33 (no SYN before it: an off-path sender cannot
// complete one), and returns how many the kernel took.
func forgeHellos(t *testing.T, h *testnet.Host, server netip.AddrPort, n int) int {
	t.Helper()
	c := craftpcap.NewConversations(t, 11, server)
	hello := c.Hello()
	sent := 0
	err := h.Do(func() error {
		fd, err := syscall.Socket(syscall.AF_INET6, syscall.SOCK_RAW, syscall.IPPROTO_RAW)
		if err != nil {
			return fmt.Errorf("raw socket: %w", err)
		}
		defer syscall.Close(fd)
		to := &syscall.SockaddrInet6{Addr: server.Addr().As16()}
		for i := range n {
			src := netip.AddrPortFrom(netip.MustParseAddr(fmt.Sprintf("2001:db8:%x::1", 0x8000+i)), uint16(30000+i))
			pkt := craftpcap.Segment{Src: src, Dst: server, Seq: uint32(i) * 2654435761, Ack: uint32(i) * 40503,
				Flags: craftpcap.FlagACK | craftpcap.FlagPSH, Payload: hello}.Packet()
			if err := syscall.Sendto(fd, pkt, 0, to); err != nil {
				return fmt.Errorf("forged hello %d: %w", i, err)
			}
			sent++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sent
}
