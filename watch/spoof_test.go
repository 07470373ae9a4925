package watch

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/internal/asntest"
	"github.com/mtuscope/mtuscope/internal/craftpcap"
	"github.com/mtuscope/mtuscope/monitor"
)

// Spoofing (issue 16, S18): watch --read on captures where an off-path
// sender forges client addresses. Only handshakes whose SYN exchange the
// capture saw are evidence; the forged ones are counted apart.

var (
	spoofServer4 = netip.MustParseAddrPort("203.0.113.10:443")
	spoofServer6 = netip.MustParseAddrPort("[2001:db8:300::10]:443")
	spoofStart   = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
)

// customer returns client k of testbed network i (see
// asntest.WriteTestbed: AS64496+i), over IPv6 or IPv4.
func customer(i, k int, v6 bool) netip.AddrPort {
	port := uint16(20000 + k%40000)
	if v6 {
		return netip.AddrPortFrom(netip.MustParseAddr(fmt.Sprintf("2001:db8:100:%x::%x", i, 1+k%250)), port)
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(16*i + 1 + k%14)}), port)
}

// forged returns an address in the i-th of many /48s no ASN covers.
func forged(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr(fmt.Sprintf("2001:db8:%x::1", 0x8000+i)), uint16(30000+i%30000))
}

// every spreads n events over the minute starting at m: the i-th at its slot.
func every(m time.Time, n int, f func(i int, ts time.Time)) {
	for i := range n {
		f(i, m.Add(time.Duration(i)*(50*time.Second)/time.Duration(n)))
	}
}

type spoofResult struct {
	snap    monitor.Snapshot
	metrics string
	// log counts the handshake log's lines: verified and not.
	logVerified, logUnverified int
}

// replaySpoof writes the capture that fill makes, replays it as watch
// --read does, and returns what the monitor concluded and its metrics.
func replaySpoof(t *testing.T, fill func(c *craftpcap.Conversations)) spoofResult {
	return replaySpoofWith(t, Defaults(), fill)
}

func replaySpoofWith(t *testing.T, cfg Config, fill func(c *craftpcap.Conversations)) spoofResult {
	t.Helper()
	dir := t.TempDir()
	db := filepath.Join(dir, "asn.db")
	asntest.WriteTestbed(t, db, 64496, 4)
	c := craftpcap.NewConversations(t, 7, spoofServer4, spoofServer6)
	fill(c)
	pcap := filepath.Join(dir, "spoof.pcap")
	pw := craftpcap.NewWriter(t, pcap)
	c.Write(t, pw)
	pw.Close(t)

	cfg.ASNDatabase = db
	cfg.DataDir = dir
	cfg.HandshakeLog = filepath.Join(dir, "handshakes.log")
	w, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Replay(context.Background(), []string{pcap}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(w.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	r := spoofResult{snap: w.Monitor.Snapshot(false), metrics: string(b)}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	lines, err := os.ReadFile(cfg.HandshakeLog)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(lines)), "\n") {
		var rec monitor.HandshakeRecord
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("handshake log line %q: %v", l, err)
		}
		if rec.Verified {
			r.logVerified++
		} else {
			r.logUnverified++
		}
	}
	t.Logf("handshake log: %d lines verified, %d unverified; %s", r.logVerified, r.logUnverified,
		r.metric("mtuscope_handshake_log_suppressed_lines_total "))
	t.Logf("%s", r.metric("mtuscope_unverified_handshakes_total"))
	t.Logf("%s", r.metric("mtuscope_flows_evicted_total"))
	for _, n := range r.snap.Networks {
		if n.Handshakes > 0 && (n.ASN != 0 || n.Alert) {
			t.Logf("%s: %v alert=%v %s %s", n.Network, n.Outcomes, n.Alert, n.Verdict, n.Direction)
		}
	}
	t.Logf("%d networks, %d handshakes folded into other, totals %v", len(r.snap.Networks), r.snap.Folded, r.snap.Totals)
	for _, a := range r.snap.Alerts {
		t.Logf("alert %s %s", a.State, a.Summary)
	}
	return r
}

// firing returns the keys of the alerts that fired: "server" or the network.
func (r spoofResult) fired() map[string]bool {
	f := map[string]bool{}
	for _, a := range r.snap.Alerts {
		if a.State == monitor.Firing {
			f[a.Kind+"/"+a.Network] = true
		}
	}
	return f
}

// metric returns the lines of the metrics text that start with prefix.
func (r spoofResult) metric(prefix string) string {
	var out []string
	for _, l := range strings.Split(r.metrics, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// healthy writes, in every minute of [from, to), n completed handshakes
// from network i, half over IPv6.
func healthy(c *craftpcap.Conversations, i, n, from, to int) {
	for m := from; m < to; m++ {
		every(spoofStart.Add(time.Duration(m)*time.Minute+time.Second), n, func(k int, ts time.Time) {
			c.Completed(ts, customer(i, m*n+k, k%2 == 0))
		})
	}
}

// (a) Table exhaustion: 2,000 one-segment hellos forged from 2,000 /48s
// before a network first shows its 60 real upstream stalls.
func TestSpoofTableExhaustion(t *testing.T) {
	r := replaySpoof(t, func(c *craftpcap.Conversations) {
		healthy(c, 1, 30, 0, 7)
		healthy(c, 2, 30, 0, 7)
		every(spoofStart.Add(30*time.Second), 2000, func(i int, ts time.Time) {
			c.SpoofedHello(spoofStart.Add(30*time.Second+time.Duration(i)*300*time.Microsecond), forged(i), false)
		})
		for m := 1; m < 6; m++ {
			every(spoofStart.Add(time.Duration(m)*time.Minute+3*time.Second), 12, func(k int, ts time.Time) {
				c.StalledUp(ts, customer(0, m*12+k, true))
			})
		}
	})
	if f := r.fired(); !f["network/AS64496"] || len(f) != 1 {
		t.Errorf("alerts fired %v, want the failing network AS64496 alone", f)
	}
	r.want(t, `mtuscope_unverified_handshakes_total{outcome="timeout"} 2000`, "mtuscope_networks_folded_handshakes_total 0")
	// The forged hellos time out within 0.6 s of each other: the log
	// takes its burst of them and counts the rest.
	if r.logVerified != 60 || r.logUnverified < monitor.UnverifiedLogBurst || r.logUnverified > monitor.UnverifiedLogBurst+2 {
		t.Errorf("handshake log: %d verified lines (want the 60 stalls), %d unverified (want about %d)",
			r.logVerified, r.logUnverified, monitor.UnverifiedLogBurst)
	}
	r.want(t, fmt.Sprintf("mtuscope_handshake_log_suppressed_lines_total %d", 2000-r.logUnverified))
}

// want checks that the metrics hold each line.
func (r spoofResult) want(t *testing.T, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(r.metrics, l+"\n") {
			t.Errorf("metrics lack %q", l)
		}
	}
}

// (b) A false server-wide alert: 200 hellos a minute forged from 200
// /48s, half of them answered by the server's reset.
func TestSpoofServerWide(t *testing.T) {
	r := replaySpoof(t, func(c *craftpcap.Conversations) {
		healthy(c, 1, 45, 0, 9)
		healthy(c, 2, 45, 0, 9)
		for m := 2; m < 9; m++ {
			every(spoofStart.Add(time.Duration(m)*time.Minute+2*time.Second), 200, func(i int, ts time.Time) {
				c.SpoofedHello(ts, forged(i), i%2 == 0)
			})
		}
		for m := 3; m < 8; m++ {
			every(spoofStart.Add(time.Duration(m)*time.Minute+3*time.Second), 12, func(k int, ts time.Time) {
				c.StalledUp(ts, customer(0, m*12+k, true))
			})
		}
	})
	if f := r.fired(); !f["network/AS64496"] || len(f) != 1 {
		t.Errorf("alerts fired %v, want the failing network AS64496 alone, no server-wide alert", f)
	}
	r.want(t, `mtuscope_unverified_handshakes_total{outcome="reset"} 700`, `mtuscope_unverified_handshakes_total{outcome="timeout"} 700`)
}

// (c) Forged alerts: ten blind "stalls" a minute (a hello's head and a
// tail past a gap, no SYN, the server silent) naming a healthy network.
func TestSpoofForgedStalls(t *testing.T) {
	r := replaySpoof(t, func(c *craftpcap.Conversations) {
		healthy(c, 1, 4, 0, 8)
		healthy(c, 2, 60, 0, 8)
		for m := 1; m < 8; m++ {
			every(spoofStart.Add(time.Duration(m)*time.Minute+4*time.Second), 10, func(k int, ts time.Time) {
				c.BlindStall(ts, customer(1, 1000+m*10+k, true))
			})
		}
	})
	if f := r.fired(); len(f) != 0 {
		t.Errorf("alerts fired %v, want none", f)
	}
	r.want(t, `mtuscope_unverified_handshakes_total{outcome="stalled_clienthello"} 70`)
}

// Flow-table exhaustion: forged one-segment hellos, more a second than the
// flow table holds in the five seconds a real stall lasts, must not push
// the real (verified) stalls out of it before they are classified.
func TestSpoofFlowTable(t *testing.T) {
	cfg := Defaults()
	cfg.MaxFlows = 2000
	r := replaySpoofWith(t, cfg, func(c *craftpcap.Conversations) {
		healthy(c, 1, 30, 0, 7)
		healthy(c, 2, 30, 0, 7)
		for m := 1; m < 7; m++ {
			every(spoofStart.Add(time.Duration(m)*time.Minute), 60_000, func(i int, ts time.Time) {
				c.SpoofedHello(ts, forged(i%5000), false)
			})
		}
		for m := 1; m < 6; m++ {
			every(spoofStart.Add(time.Duration(m)*time.Minute+3*time.Second), 12, func(k int, ts time.Time) {
				c.StalledUp(ts, customer(0, m*12+k, true))
			})
		}
	})
	if f := r.fired(); !f["network/AS64496"] || len(f) != 1 {
		t.Errorf("alerts fired %v, want the failing network AS64496 alone", f)
	}
}

// Blind resets: for each real stall, a reset forged from its client's
// endpoint (the port guessed, by spraying them all) with a sequence number
// the sender could not know. The real server ignores such resets; the
// stalls must still count. (This held before verification too: a
// handshake whose hello already showed a loss is classified by the loss,
// however it closes. A reset landing in the 20 ms before the tail arrived
// would turn the stall into a reset, at the price of a sweep of every
// port every 20 ms.)
func TestSpoofBlindResets(t *testing.T) {
	r := replaySpoof(t, func(c *craftpcap.Conversations) {
		healthy(c, 1, 30, 0, 7)
		healthy(c, 2, 30, 0, 7)
		for m := 1; m < 6; m++ {
			every(spoofStart.Add(time.Duration(m)*time.Minute+3*time.Second), 12, func(k int, ts time.Time) {
				cl := customer(0, m*12+k, true)
				c.StalledUp(ts, cl)
				c.BlindReset(ts.Add(time.Second), cl)
			})
		}
	})
	if f := r.fired(); !f["network/AS64496"] || len(f) != 1 {
		t.Errorf("alerts fired %v, want the failing network AS64496 alone", f)
	}
}
