package realcap

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/mtuscope/mtuscope/analyze"
	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/flow"
	"github.com/mtuscope/mtuscope/watch"
)

// known lists every connection where mtuscope and the reference differ,
// by "file#stream", with the reason. A difference not listed fails the
// test, and so does a listed one that no longer differs.
var known = map[string]string{
	"irc-starttls.pcap#0": "IRC STARTTLS: tshark's IRC dissector does not hand the connection to TLS after STARTTLS, so it reads no ClientHello; mtuscope finds it after the plaintext and the handshake completes",
	"heartbleed.pcap#0":   "the Heartbleed attack: after the server's flight the client sends a 16 KB heartbeat request, never a handshake answer, then closes; tshark's rule counts any client record after the ServerHello as completion, mtuscope waits for a handshake record and reports the client's close",
}

// zeekEstablished are facts copied from Zeek's own baselines for these
// captures (testing/btest/Baseline/scripts.base.protocols.*/ssl.log, the
// established column, by client port): a second reference beside tshark.
var zeekEstablished = map[string]map[uint16]bool{
	"smtp-starttls.pcap":  {54170: true},  // smtp.starttls
	"imap-starttls.pcap":  {49640: true},  // imap.starttls
	"xmpp-starttls.pcap":  {56048: true},  // xmpp.starttls
	"ml-dsa-44-cert.pcap": {55001: false}, // ssl.ml-dsa-44-cert: history Csx, the capture ends after the certificate
}

// alertNames are the alert codes the corpus holds, named here from RFC
// 8446 and RFC 5246 (not from mtuscope's own table).
var alertNames = map[int]string{40: "handshake_failure", 48: "unknown_ca", 70: "protocol_version", 112: "unrecognized_name"}

// sizeVerdicts are the verdicts about packet sizes: none may come from a
// capture without loss.
var sizeVerdicts = map[diagnose.Verdict]bool{diagnose.VerdictBlackhole: true, diagnose.VerdictPMTUReduced: true, diagnose.VerdictFragmentsDropped: true}

type source struct {
	file, origin string
	size         int64
	sha          string
}

// sources reads the corpus table of testdata/SOURCES.md.
func sources(t *testing.T) []source {
	f, err := os.Open("testdata/SOURCES.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []source
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		c := strings.Split(sc.Text(), "|")
		if len(c) != 6 || !strings.HasSuffix(strings.TrimSpace(c[1]), "pcap") {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(c[3]), 10, 64)
		if err != nil {
			t.Fatalf("SOURCES.md: %q: %v", sc.Text(), err)
		}
		out = append(out, source{strings.TrimSpace(c[1]), strings.TrimSpace(c[2]), n, strings.TrimSpace(c[4])})
	}
	if len(out) == 0 {
		t.Fatal("SOURCES.md lists no capture")
	}
	return out
}

// captureDir is where the corpus's captures are: $MTUSCOPE_REALCAP_DIR,
// else testdata/captures when it exists, else shared/realcap beside the
// repository (the project keeps third-party data there, not in its own
// history: CI gets a copy of shared/ beside its clone).
func captureDir() string {
	if d := os.Getenv("MTUSCOPE_REALCAP_DIR"); d != "" {
		return d
	}
	if _, err := os.Stat("testdata/captures"); err == nil {
		return "testdata/captures"
	}
	return filepath.Join("..", "..", "..", "shared", "realcap")
}

// TestRealCaptures runs every capture of the corpus through analyze and
// watch --read and compares each connection with tshark's reading.
func TestRealCaptures(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tshark is not installed (.ci/run installs it)")
		}
		t.Skip("tshark is not installed: the reference needs it")
	}
	srcs := sources(t)
	var missing []string
	for _, s := range srcs {
		if _, err := os.Stat(filepath.Join(captureDir(), s.file)); err != nil {
			missing = append(missing, s.file)
		}
	}
	if len(missing) > 0 {
		t.Skipf("%d of %d corpus captures are not in %s (SOURCES.md says where each comes from): %v", len(missing), len(srcs), captureDir(), missing)
	}
	confusion := map[string]map[string]int{}
	seen := map[string]bool{}
	total, agree := 0, 0
	var total0 int64
	for _, s := range srcs {
		path := filepath.Join(captureDir(), s.file)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		total0 += int64(len(b))
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != s.sha || int64(len(b)) != s.size {
			t.Errorf("%s: not the capture SOURCES.md names (%d bytes, sha256 %x)", s.file, len(b), sum)
			continue
		}
		if len(b) > 1<<20 {
			t.Errorf("%s: %d bytes, over the corpus' 1 MiB a file", s.file, len(b))
		}
		res, err := analyze.File(path, analyze.Limits{})
		if err != nil {
			t.Errorf("%s: analyze: %v", s.file, err)
			continue
		}
		if sizeVerdicts[res.Verdict] {
			t.Errorf("%s: size verdict %s from a capture of healthy connections", s.file, res.Verdict)
		}
		watched := watchFile(t, path, res.Handshakes)
		ref, err := reference(tshark, path)
		if err != nil {
			t.Fatal(err)
		}
		// The reference's connections by ports; mtuscope's handshakes
		// joined to them.
		byPorts := map[[2]uint16][]*refConn{}
		for _, c := range ref {
			byPorts[[2]uint16{c.cport, c.sport}] = append(byPorts[[2]uint16{c.cport, c.sport}], c)
		}
		matched := map[int]analyze.Handshake{}
		for _, h := range res.Handshakes {
			cs := byPorts[[2]uint16{h.Client.Port(), h.Server.Port()}]
			if len(cs) == 0 {
				t.Errorf("%s: handshake %s -> %s (%s) is no connection tshark reads", s.file, h.Client, h.Server, h.Outcome)
				continue
			}
			matched[cs[0].stream] = h
			byPorts[[2]uint16{h.Client.Port(), h.Server.Port()}] = cs[1:]
			stallWithoutLoss(t, s.file, h.Handshake)
			if est, ok := zeekEstablished[s.file][h.Client.Port()]; ok && est != (h.Outcome == diagnose.Completed) {
				t.Errorf("%s: %s -> %s: %s (%s), Zeek's baseline says established %v", s.file, h.Client, h.Server, h.Outcome, h.Detail, est)
			}
			w, ok := watched[key(h.Client, h.Server)]
			switch {
			case !ok:
				t.Errorf("%s: %s -> %s: analyze says %s, watch --read emitted nothing", s.file, h.Client, h.Server, h.Outcome)
			case w.Outcome != h.Outcome || w.CaptureEnded != h.CaptureEnded:
				t.Errorf("%s: %s -> %s: analyze says %s (%s), watch --read %s (%s)", s.file, h.Client, h.Server, h.Outcome, h.Detail, w.Outcome, w.Detail)
			}
		}
		streams := make([]int, 0, len(ref))
		for st := range ref {
			streams = append(streams, st)
		}
		sort.Ints(streams)
		for _, st := range streams {
			c := ref[st]
			h, listed := matched[st]
			got := "none"
			if listed {
				got = string(h.Outcome)
				if h.CaptureEnded {
					got += " (capture ended)"
				}
			}
			rc := c.class()
			if confusion[got] == nil {
				confusion[got] = map[string]int{}
			}
			confusion[got][rc]++
			total++
			id := fmt.Sprintf("%s#%d", s.file, st)
			ok := agrees(h, listed, c)
			reason, isKnown := known[id]
			seen[id] = true
			switch {
			case ok && isKnown:
				t.Errorf("%s: listed as a difference (%s) but mtuscope now agrees (%s, reference %s): take it off the list", id, reason, got, rc)
			case ok:
				agree++
			case !isKnown:
				detail := ""
				if listed {
					detail = h.Detail
				}
				t.Errorf("%s: mtuscope %s (%s), reference %s, and the difference is not in the known table", id, got, detail, rc)
			}
		}
	}
	for id := range known {
		if !seen[id] {
			t.Errorf("known difference %s names no connection of the corpus", id)
		}
	}
	t.Logf("%d captures, %d bytes; %d connections, %d agree with tshark, %d listed differences", len(srcs), total0, total, agree, len(known))
	t.Log("confusion (rows: mtuscope, columns: tshark)\n" + table(confusion))
}

// agrees reports whether mtuscope's handshake h (listed says there is
// one) says what the reference connection c says.
func agrees(h analyze.Handshake, listed bool, c *refConn) bool {
	rc := c.class()
	switch {
	case rc == "no_hello":
		return !listed || h.Outcome == diagnose.NotTLS || h.Outcome == diagnose.NoClientHello
	case !listed:
		return false
	case rc == "completed":
		return h.Outcome == diagnose.Completed
	case rc == "alert:enc":
		return h.Outcome == diagnose.Alert && strings.Contains(h.Detail, "encrypted")
	case strings.HasPrefix(rc, "alert:"):
		n, _ := strconv.Atoi(strings.TrimPrefix(rc, "alert:"))
		who := "server: "
		if c.alertByCli {
			who = "client: "
		}
		return h.Outcome == diagnose.Alert && h.Detail == who+alertNames[n]
	case rc == "hello_only" && h.Outcome == diagnose.NotTLS:
		// The server answered the hello in another protocol.
		return strings.HasPrefix(h.Detail, "server sent")
	}
	// The handshake went no further: neither completed, nor a stall
	// without loss (stallWithoutLoss checks that).
	return h.Outcome != diagnose.Completed && h.Outcome != diagnose.Alert && h.Outcome != diagnose.NotTLS
}

// stallWithoutLoss fails a stalled handshake that shows no lost packet.
func stallWithoutLoss(t *testing.T, file string, h flow.Handshake) {
	t.Helper()
	stalled := h.Outcome == diagnose.StalledClientHello || h.Outcome == diagnose.StalledServerFlight
	if stalled && h.Up.Lost == 0 && h.Down.Lost == 0 {
		t.Errorf("%s: %s -> %s %s (%s) with nothing lost", file, h.Client, h.Server, h.Outcome, h.Detail)
	}
}

func key(c, s netip.AddrPort) string { return c.String() + " " + s.String() }

// watchFile replays a capture through watch with the server ports analyze
// found, and returns the handshakes it classified.
func watchFile(t *testing.T, path string, hs []analyze.Handshake) map[string]flow.Handshake {
	t.Helper()
	cfg := watch.Defaults()
	cfg.DataDir = t.TempDir()
	ports := map[int]bool{}
	for _, h := range hs {
		ports[int(h.Server.Port())] = true
	}
	cfg.Ports = nil
	for p := range ports {
		cfg.Ports = append(cfg.Ports, p)
	}
	if len(cfg.Ports) == 0 {
		cfg.Ports = []int{443}
	}
	sort.Ints(cfg.Ports)
	got := map[string]flow.Handshake{}
	w, err := watch.New(cfg, watch.Options{Emit: func(h flow.Handshake) { got[key(h.Client, h.Server)] = h }})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Replay(context.Background(), []string{path}); err != nil {
		t.Fatalf("watch --read %s: %v", path, err)
	}
	return got
}

// table prints the confusion counts.
func table(m map[string]map[string]int) string {
	cols := map[string]bool{}
	var rows []string
	for r, cs := range m {
		rows = append(rows, r)
		for c := range cs {
			cols[c] = true
		}
	}
	var cl []string
	for c := range cols {
		cl = append(cl, c)
	}
	sort.Strings(rows)
	sort.Strings(cl)
	var b strings.Builder
	fmt.Fprintf(&b, "%-34s", "")
	for _, c := range cl {
		fmt.Fprintf(&b, " %17s", c)
	}
	b.WriteString("\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "%-34s", r)
		for _, c := range cl {
			fmt.Fprintf(&b, " %17d", m[r][c])
		}
		b.WriteString("\n")
	}
	return b.String()
}

// TestConcatenatedCaptures replays the whole corpus as one run, the files
// one after the other (years apart, and out of order): each file's
// handshakes keep the outcomes they have alone, none lasts longer than
// the timeout, and no alert fires.
func TestConcatenatedCaptures(t *testing.T) {
	srcs := sources(t)
	var files []string
	alone := map[string]flow.Handshake{}
	for _, s := range srcs {
		path := filepath.Join(captureDir(), s.file)
		if _, err := os.Stat(path); err != nil {
			t.Skipf("%s is not in %s (SOURCES.md says where it comes from)", s.file, captureDir())
		}
		files = append(files, path)
	}
	cfg := watch.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.Ports = []int{21, 25, 110, 143, 389, 443, 3306, 5222, 5269, 5432, 6667, 1080, 993, 995}
	for _, path := range files {
		w, err := watch.New(cfg, watch.Options{Emit: func(h flow.Handshake) { alone[key(h.Client, h.Server)+" "+h.Start.String()] = h }})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Replay(context.Background(), []string{path}); err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
	together := map[string]flow.Handshake{}
	w, err := watch.New(cfg, watch.Options{Emit: func(h flow.Handshake) { together[key(h.Client, h.Server)+" "+h.Start.String()] = h }})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Replay(context.Background(), files); err != nil {
		t.Fatal(err)
	}
	if len(together) != len(alone) {
		t.Errorf("%d handshakes replayed together, %d alone", len(together), len(alone))
	}
	for k, h := range together {
		a, ok := alone[k]
		if !ok || a.Outcome != h.Outcome || a.CaptureEnded != h.CaptureEnded {
			t.Errorf("%s: together %s (%s), alone %s (%s)", k, h.Outcome, h.Detail, a.Outcome, a.Detail)
		}
		if d := h.End.Sub(h.Start); d < 0 || d > 2*cfg.HandshakeTimeout {
			t.Errorf("%s: lasted %v", k, d)
		}
	}
	snap := w.Monitor.Snapshot(false)
	if len(snap.Alerts) != 0 {
		t.Errorf("alerts from healthy captures replayed together: %+v", snap.Alerts)
	}
	t.Logf("%d files, %d handshakes, outcomes %v", len(files), len(together), snap.Totals)
}
