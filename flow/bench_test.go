package flow

import (
	"errors"
	"io"
	"os"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/mtuscope/mtuscope/capture"
	"github.com/mtuscope/mtuscope/packet"
)

// benchCapture is the real capture the benchmark replays:
// $MTUSCOPE_BENCH_PCAP, else the shared one made in the testbed.
func benchCapture() string {
	if f := os.Getenv("MTUSCOPE_BENCH_PCAP"); f != "" {
		return f
	}
	return "/work/bench/handshakes.pcap"
}

type frame struct {
	data []byte
	link packet.LinkType
	ts   time.Time
}

// loadFrames reads a capture into memory once.
func loadFrames(b *testing.B, file string) []frame {
	src, err := capture.OpenFile(file)
	if err != nil {
		b.Skipf("no capture to replay: %v", err)
	}
	defer src.Close()
	var out []frame
	var arena []byte
	for {
		data, ci, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		if len(arena)+len(data) > cap(arena) {
			arena = make([]byte, 0, max(64<<20, len(data)))
		}
		start := len(arena)
		arena = append(arena, data...)
		out = append(out, frame{arena[start:len(arena):len(arena)], ci.Link, ci.Timestamp})
	}
	if len(out) == 0 {
		b.Skip("empty capture")
	}
	return out
}

// BenchmarkTracker times decode plus tracking per packet of a real
// capture held in memory (one op is one packet); the capture is replayed,
// shifted in time, as often as b.N asks.
func BenchmarkTracker(b *testing.B) {
	frames := loadFrames(b, benchCapture())
	span := frames[len(frames)-1].ts.Sub(frames[0].ts) + time.Hour
	handshakes := 0
	tr := NewTracker(Config{Ports: []uint16{443}, Emit: func(Handshake) { handshakes++ }})
	var p packet.Packet
	var off time.Duration
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i % len(frames)
		if j == 0 && i > 0 {
			tr.Flush(frames[len(frames)-1].ts.Add(off))
			off += span
		}
		f := &frames[j]
		if packet.Decode(f.link, f.data, &p) == nil {
			tr.Packet(&p, f.ts.Add(off))
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&ms1)
	if b.N >= len(frames) {
		b.Logf("%d packets: %+v", b.N, tr.Stats())
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
	b.ReportMetric(float64(handshakes)/b.Elapsed().Seconds(), "handshakes/s")
	b.ReportMetric(float64(unsafe.Sizeof(flow{})), "bytes/flow")
	if handshakes > 0 {
		b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(handshakes), "allocs/handshake")
	}
	b.ReportMetric(float64(len(frames)), "capture_packets")
}
