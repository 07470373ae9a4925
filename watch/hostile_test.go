package watch

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/internal/craftpcap"
)

// Hostile captures: a million spoofed SYNs, and a hundred thousand
// connections that send half a ClientHello and stop, each from its own
// network. Nothing alerts, the flow table and the network table stay
// within their bounds, and the heap stays small.
func TestHostileCaptures(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and replays 1.4 million packets")
	}
	dir := t.TempDir()
	server := [4]byte{203, 0, 113, 10}
	start := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(1, 2))
	randAddr := func() [4]byte {
		return [4]byte{byte(1 + rng.IntN(222)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(1 + rng.IntN(254))}
	}

	syns := filepath.Join(dir, "syn-flood.pcap")
	w := craftpcap.NewWriter(t, syns)
	for i := 0; i < 1_000_000; i++ {
		ts := start.Add(time.Duration(i) * 100 * time.Microsecond) // 10,000 a second for 100 s
		w.TCP(t, ts, randAddr(), server, uint16(1024+rng.IntN(60000)), 443, rng.Uint32(), 0, craftpcap.FlagSYN, nil)
	}
	w.Close(t)

	// Half a ClientHello: the record header announces 512 bytes, 100 come.
	hello := make([]byte, 100)
	copy(hello, []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03})
	halves := filepath.Join(dir, "half-hellos.pcap")
	w = craftpcap.NewWriter(t, halves)
	for i := 0; i < 100_000; i++ {
		ts := start.Add(time.Duration(i) * time.Millisecond) // 1,000 a second for 100 s
		c := randAddr()
		port := uint16(1024 + rng.IntN(60000))
		cs, ss := rng.Uint32(), rng.Uint32()
		w.TCP(t, ts, c, server, port, 443, cs, 0, craftpcap.FlagSYN, nil)
		w.TCP(t, ts.Add(time.Millisecond), server, c, 443, port, ss, cs+1, craftpcap.FlagSYN|craftpcap.FlagACK, nil)
		w.TCP(t, ts.Add(2*time.Millisecond), c, server, port, 443, cs+1, ss+1, craftpcap.FlagACK, nil)
		w.TCP(t, ts.Add(3*time.Millisecond), c, server, port, 443, cs+1, ss+1, craftpcap.FlagACK|craftpcap.FlagPSH, hello)
		w.TCP(t, ts.Add(4*time.Millisecond), server, c, 443, port, ss+1, cs+101, craftpcap.FlagACK, nil)
	}
	w.Close(t)

	for _, file := range []string{syns, halves} {
		t.Run(filepath.Base(file), func(t *testing.T) {
			cfg := Defaults()
			cfg.DataDir = t.TempDir()
			cfg.MaxFlows = 10000
			cfg.Monitor.MaxNetworks = 1000
			w, err := New(cfg, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			var before runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			if err := w.Replay(context.Background(), []string{file}); err != nil {
				t.Fatal(err)
			}
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			snap := w.Monitor.Snapshot(false)
			f := w.Figures()
			e := w.Monitor.Exported()
			t.Logf("%d packets, flows max %d, evicted %d, %d networks tracked, %d handshakes folded, outcomes %v, heap %d MiB (total allocated %d MiB), sys %d MiB",
				f.Packets, f.FlowsMax, f.FlowsEvicted, e.Tracked, e.Folded, snap.Totals,
				after.HeapInuse>>20, (after.TotalAlloc-before.TotalAlloc)>>20, after.Sys>>20)
			if len(snap.Alerts) != 0 {
				t.Errorf("the flood alerted: %+v", snap.Alerts[0])
			}
			if e.Tracked > cfg.Monitor.MaxNetworks+1 || f.FlowsMax != cfg.MaxFlows {
				t.Errorf("tracked %d networks, flow table %d", e.Tracked, f.FlowsMax)
			}
			if after.HeapInuse > 256<<20 {
				t.Errorf("heap %d MiB", after.HeapInuse>>20)
			}
		})
	}
}
