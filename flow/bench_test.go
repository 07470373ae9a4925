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

// BenchmarkSYNFlood feeds spoofed SYNs, each from a new source, to a
// tracker with the default table bound: the table stays at its bound, the
// heap in use is reported after the flood (one op is one SYN).
func BenchmarkSYNFlood(b *testing.B) {
	syn := []byte{
		0x45, 0, 0, 44, 0, 0, 0x40, 0, 64, 6, 0, 0, 198, 51, 100, 2, 203, 0, 113, 10, // IPv4
		0x9c, 0x40, 0x01, 0xbb, 0, 0, 0, 1, 0, 0, 0, 0, 0x60, 0x02, 0xff, 0xff, 0, 0, 0, 0, // TCP, SYN
		2, 4, 0x05, 0xb4, // MSS 1460
	}
	tr := NewTracker(Config{Emit: func(Handshake) { b.Fatal("a SYN flood emitted a handshake") }})
	var p packet.Packet
	ts := time.Unix(1e9, 0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		syn[13], syn[14], syn[15] = byte(i>>16), byte(i>>8), byte(i)
		syn[20], syn[21] = byte(i>>24), byte(i)
		syn[24], syn[25] = byte(i>>8), byte(i)
		if packet.Decode(packet.LinkRaw, syn, &p) == nil {
			tr.Packet(&p, ts.Add(time.Duration(i)*time.Microsecond))
		}
	}
	b.StopTimer()
	st := tr.Stats()
	if st.Open > st.Max {
		b.Fatalf("%d flows open, bound %d", st.Open, st.Max)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	runtime.KeepAlive(tr)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap_MiB")
	b.ReportMetric(float64(st.Open), "flows_open")
}
