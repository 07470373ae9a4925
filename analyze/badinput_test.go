package analyze

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/mtuscope/mtuscope/capture"
	"github.com/mtuscope/mtuscope/diagnose"
)

// wantFileError checks that err names the file and an offset.
func wantFileError(t *testing.T, err error, path string) *capture.FileError {
	t.Helper()
	var fe *capture.FileError
	if !errors.As(err, &fe) || fe.Path != path {
		t.Fatalf("error %v does not name the file %s", err, path)
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "at byte") {
		t.Fatalf("error %q does not say the file and the offset", err)
	}
	return fe
}

func TestBadInput(t *testing.T) {
	good := serverSideStall(t, true).buf.Bytes()
	write := func(name string, b []byte) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Run("truncated", func(t *testing.T) {
		// Cut inside a record: analysed up to the cut, with a warning
		// naming the offset of the cut record.
		p := write("cut.pcap", good[:len(good)-700])
		res, err := File(p, Limits{})
		if err != nil {
			t.Fatalf("a truncated capture: %v, want it analysed up to the cut", err)
		}
		st := res.Stats["capture"]
		if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "truncated") || st.TruncatedAt == nil ||
			*st.TruncatedAt < int64(len(good)-2000) || *st.TruncatedAt > int64(len(good)-700) || st.Packets == 0 {
			t.Errorf("warnings %q, stats %+v: want one warning and the offset near the cut at %d", res.Warnings, st, len(good)-700)
		}
		res, err = Pair(p, p, Limits{})
		if err != nil {
			t.Fatalf("pair of truncated files: %v", err)
		}
		if len(res.Warnings) != 2 {
			t.Errorf("pair of truncated files: warnings %q, want one each", res.Warnings)
		}
	})
	t.Run("not a capture", func(t *testing.T) {
		p := write("notes.txt", []byte("tcpdump -i eth0 -w capture.pcap\nthis is not a capture\n"))
		_, err := File(p, Limits{})
		wantFileError(t, err, p)
		if !errors.Is(err, capture.ErrFormat) {
			t.Errorf("error %v is not a format error", err)
		}
	})
	t.Run("pcapng unknown block", func(t *testing.T) {
		// A pcapng section with an unknown block type between packets
		// (skipped, as the format says), then one whose length runs past
		// the end of the file.
		var b []byte
		shb := make([]byte, 28)
		binary.LittleEndian.PutUint32(shb[0:], 0x0a0d0d0a)
		binary.LittleEndian.PutUint32(shb[4:], 28)
		binary.LittleEndian.PutUint32(shb[8:], 0x1a2b3c4d)
		binary.LittleEndian.PutUint16(shb[12:], 1)
		binary.LittleEndian.PutUint64(shb[16:], ^uint64(0))
		binary.LittleEndian.PutUint32(shb[24:], 28)
		b = append(b, shb...)
		idb := make([]byte, 20)
		binary.LittleEndian.PutUint32(idb[0:], 1)
		binary.LittleEndian.PutUint32(idb[4:], 20)
		binary.LittleEndian.PutUint16(idb[8:], 1) // Ethernet
		binary.LittleEndian.PutUint32(idb[12:], 262144)
		binary.LittleEndian.PutUint32(idb[16:], 20)
		b = append(b, idb...)
		unknown := make([]byte, 16)
		binary.LittleEndian.PutUint32(unknown[0:], 0x0badcafe)
		binary.LittleEndian.PutUint32(unknown[4:], 16)
		binary.LittleEndian.PutUint32(unknown[12:], 16)
		b = append(b, unknown...)
		ok := write("unknown.pcapng", b)
		if _, err := File(ok, Limits{}); err == nil || !strings.Contains(err.Error(), "holds no packets") {
			t.Errorf("a pcapng with only an unknown block: %v, want 'holds no packets'", err)
		}
		huge := append([]byte(nil), unknown...)
		binary.LittleEndian.PutUint32(huge[4:], 1<<30) // a gigabyte that is not there
		p := write("huge.pcapng", append(append([]byte(nil), b...), huge...))
		_, err := File(p, Limits{})
		wantFileError(t, err, p)
	})
	t.Run("random gigabyte", func(t *testing.T) {
		if testing.Short() {
			t.Skip("streams a gigabyte")
		}
		// A pcap header, then a gigabyte of random bytes, streamed through
		// a named pipe: nothing is kept on disk or in memory.
		testRandomStream(t, 1<<30, false)
	})
	t.Run("random frames gigabyte", func(t *testing.T) {
		if testing.Short() {
			t.Skip("streams a gigabyte")
		}
		// Valid records holding a gigabyte of random frames: every one is
		// decoded (or refused) and the analysis ends in bounded memory.
		testRandomStream(t, 1<<30, true)
	})
}

// testRandomStream feeds n bytes of random data behind a pcap header to
// File through a FIFO, in well-formed records when records is set, and
// checks the error (or the result) and the heap.
func testRandomStream(t *testing.T, n int64, records bool) {
	p := filepath.Join(t.TempDir(), "random.pcap")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			done <- err
			return
		}
		defer f.Close()
		w := bufio.NewWriterSize(f, 1<<20)
		hdr := make([]byte, 24)
		binary.LittleEndian.PutUint32(hdr[0:], 0xa1b2c3d4)
		binary.LittleEndian.PutUint16(hdr[4:], 2)
		binary.LittleEndian.PutUint16(hdr[6:], 4)
		binary.LittleEndian.PutUint32(hdr[16:], 65535)
		binary.LittleEndian.PutUint32(hdr[20:], 1)
		w.Write(hdr)
		rng := rand.NewChaCha8([32]byte{1})
		buf := make([]byte, 1600)
		rec := make([]byte, 16)
		var written int64
		for written < n {
			size := len(buf)
			if records {
				size = 54 + int(rng.Uint64()%1500)
				binary.LittleEndian.PutUint32(rec[0:], uint32(written>>20))
				binary.LittleEndian.PutUint32(rec[8:], uint32(size))
				binary.LittleEndian.PutUint32(rec[12:], uint32(size))
				if _, err := w.Write(rec); err != nil {
					break
				}
			}
			rng.Read(buf[:size])
			if records && size > 34 {
				// Ethernet with an IPv4 or IPv6 type, so the IP decoder
				// sees the random bytes.
				buf[12], buf[13] = 0x08, 0x00
				if buf[20]&1 == 1 {
					buf[12], buf[13] = 0x86, 0xdd
				}
			}
			if _, err := w.Write(buf[:size]); err != nil {
				break // the reader gave up: expected without records
			}
			written += int64(size)
		}
		w.Flush()
		done <- nil
	}()
	res, err := File(p, Limits{})
	// Unblock the writer if the reader stopped early.
	if f, e := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0); e == nil {
		io.Copy(io.Discard, f)
		f.Close()
	}
	<-done
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if ms.HeapInuse > 256<<20 {
		t.Errorf("heap in use %d MiB after the stream, want it bounded", ms.HeapInuse>>20)
	}
	if records {
		if err != nil {
			t.Fatalf("random frames: %v", err)
		}
		st := res.Stats["capture"]
		t.Logf("random frames: %d packets, %d undecoded, %d TCP, %d flows; heap %d MiB", st.Packets, st.Undecoded, st.TCPPackets, st.Flows, ms.HeapInuse>>20)
		if st.Packets < 1000 {
			t.Errorf("only %d packets read", st.Packets)
		}
		return
	}
	wantFileError(t, err, p)
	t.Logf("random bytes: %v; heap %d MiB", err, ms.HeapInuse>>20)
}

// TestFlowBound floods the flow table with SYNs from many ports: past
// Limits.MaxFlows each new flow pushes out an older half-open one (the
// tracker's order: a real handshake is pushed out last), counted, and the
// real handshake among them is still judged.
func TestFlowBound(t *testing.T) {
	b := serverSideStall(t, false)
	for i := range 20000 {
		src := netip.AddrPortFrom(netip.MustParseAddr("192.0.2.99"), uint16(1024+i))
		b.add(tcpSeg{src: src, dst: testServer, seq: uint32(i), syn: true, mss: 1460, ttl: 60})
	}
	res, err := File(b.file("flood.pcap"), Limits{MaxFlows: 1000})
	if err != nil {
		t.Fatal(err)
	}
	st := res.Stats["capture"]
	if st.FlowsUntracked == 0 || st.Flows-st.FlowsUntracked > 1000+1 {
		t.Errorf("stats %+v: want flows bounded by 1000 and the rest counted untracked", st)
	}
	if res.Outcomes[diagnose.StalledServerFlight] != 1 {
		t.Errorf("outcomes %v: the real handshake was lost in the flood", res.Outcomes)
	}
}
