package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/mtuscope/mtuscope/packet"
)

// testFrames are n Ethernet frames of growing size, each starting with
// its index so order can be checked.
func testFrames(n int) [][]byte {
	var out [][]byte
	for i := range n {
		f := make([]byte, 60+i*7)
		binary.BigEndian.PutUint32(f, uint32(i))
		out = append(out, f)
	}
	return out
}

var t0 = time.Date(2026, 11, 21, 3, 0, 0, 123456789, time.UTC)

func writePcap(t *testing.T, frames [][]byte, nano bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if nano {
		w = pcapgo.NewWriterNanos(&buf)
	}
	if err := w.WriteFileHeader(65536, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for i, f := range frames {
		ci := gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * time.Millisecond), CaptureLength: len(f), Length: len(f) + 100}
		if err := w.WritePacket(ci, f); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// writePcapng writes frames alternately on an Ethernet and a raw-IP
// interface, with an unknown block type in the middle.
func writePcapng(t testing.TB, frames [][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := pcapgo.NewNgWriterInterface(&buf, pcapgo.NgInterface{Name: "eth0", LinkType: layers.LinkTypeEthernet, SnapLength: 65536,
		TimestampResolution: 9}, pcapgo.DefaultNgWriterOptions)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := w.AddInterface(pcapgo.NgInterface{Name: "tun0", LinkType: layers.LinkTypeRaw, SnapLength: 65536, TimestampResolution: 9})
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range frames {
		ci := gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * time.Millisecond), CaptureLength: len(f), Length: len(f), InterfaceIndex: i % 2 * raw}
		if err := w.WritePacket(ci, f); err != nil {
			t.Fatal(err)
		}
		if i == len(frames)/2 {
			w.Flush()
			unknown := make([]byte, 16) // block type 0x0bad, length 16
			binary.LittleEndian.PutUint32(unknown[0:], 0x0bad)
			binary.LittleEndian.PutUint32(unknown[4:], 16)
			binary.LittleEndian.PutUint32(unknown[12:], 16)
			buf.Write(unknown)
		}
	}
	w.Flush()
	return buf.Bytes()
}

func gz(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func writeFile(t *testing.T, name string, b []byte) string {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func readAll(t *testing.T, path string) ([][]byte, []Info, error) {
	t.Helper()
	s, err := OpenFile(path)
	if err != nil {
		return nil, nil, err
	}
	defer s.Close()
	var datas [][]byte
	var infos []Info
	for {
		d, ci, err := s.Next()
		if err == io.EOF {
			if st := s.Stats(); st.Packets != uint64(len(datas)) {
				t.Errorf("stats %d packets, read %d", st.Packets, len(datas))
			}
			return datas, infos, nil
		}
		if err != nil {
			return datas, infos, err
		}
		datas = append(datas, append([]byte(nil), d...))
		infos = append(infos, ci)
	}
}

func TestReadFormats(t *testing.T) {
	frames := testFrames(50)
	for _, tc := range []struct {
		name  string
		data  []byte
		links bool // alternating link types (pcapng)
	}{
		{"pcap", writePcap(t, frames, false), false},
		{"pcap nanoseconds", writePcap(t, frames, true), false},
		{"pcap gzipped", gz(t, writePcap(t, frames, true)), false},
		{"pcapng", writePcapng(t, frames), true},
		{"pcapng gzipped", gz(t, writePcapng(t, frames)), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, infos, err := readAll(t, writeFile(t, "x.cap", tc.data))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(frames) {
				t.Fatalf("read %d packets, wrote %d", len(got), len(frames))
			}
			for i := range got {
				if !bytes.Equal(got[i], frames[i]) {
					t.Fatalf("packet %d differs", i)
				}
				want := packet.LinkEthernet
				if tc.links && i%2 == 1 {
					want = packet.LinkRaw
				}
				if infos[i].Link != want {
					t.Errorf("packet %d link %v, want %v", i, infos[i].Link, want)
				}
			}
			wantTS := t0.Add(3 * time.Millisecond)
			if tc.name == "pcap" {
				wantTS = wantTS.Truncate(time.Microsecond)
			}
			if !infos[3].Timestamp.Equal(wantTS) {
				t.Errorf("timestamp %v, want %v", infos[3].Timestamp, wantTS)
			}
		})
	}
}

func TestBadFiles(t *testing.T) {
	good := writePcap(t, testFrames(20), false)
	goodNg := writePcapng(t, testFrames(20))
	random := make([]byte, 1<<20)
	for i := range random {
		random[i] = byte(rand.Uint32())
	}
	for _, tc := range []struct {
		name       string
		data       []byte
		wantFormat bool // refused at open as not a capture
		minPackets int  // packets read before the error
	}{
		{"empty", nil, true, 0},
		{"text", []byte("GET / HTTP/1.1\r\nHost: example\r\n\r\n"), true, 0},
		{"random", random, true, 0},
		{"pcap cut in a record", good[:len(good)-30], false, 10},
		{"pcap cut in the file header", good[:12], false, 0},
		{"pcapng cut in a block", goodNg[:len(goodNg)-9], false, 10},
		{"gzip cut short", gz(t, good)[:200], false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, "bad.cap", tc.data)
			got, _, err := readAll(t, path)
			if err == nil {
				t.Fatalf("no error (%d packets)", len(got))
			}
			var fe *FileError
			if !errors.As(err, &fe) || fe.Path != path {
				t.Fatalf("error %v does not name the file", err)
			}
			if tc.wantFormat != errors.Is(err, ErrFormat) {
				t.Errorf("error %v: format error %v", err, !tc.wantFormat)
			}
			if len(got) < tc.minPackets {
				t.Errorf("%d packets before the error, want at least %d", len(got), tc.minPackets)
			}
			t.Log(err)
		})
	}
}

// TestTruncatedOffset checks that the offset of a truncation error is
// where the cut record starts or beyond, not 0.
func TestTruncatedOffset(t *testing.T) {
	good := writePcap(t, testFrames(20), false)
	_, _, err := readAll(t, writeFile(t, "cut.pcap", good[:len(good)-30]))
	var fe *FileError
	if !errors.As(err, &fe) || fe.Offset < int64(len(good)-400) || fe.Offset > int64(len(good)) {
		t.Fatalf("error %v, want an offset near %d", err, len(good)-30)
	}
}

func FuzzOpenFile(f *testing.F) {
	f.Add(writePcapFuzz(f))
	f.Add([]byte{0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a})
	f.Add(writePcapng(f, testFrames(3)))
	f.Add(append(ngStart(), ngBlock(4, []byte("name"))...))
	f.Add(append(append(ngSHB(), ngIDB([]byte{9, 0, 1, 0, 0x89, 0, 0, 0, 14, 0, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8})...), ngEPB()...))
	f.Add(append(ngStart(), ngBlock(ngSimplePacket, append(le32(1000), frame...))...))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "f.cap")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := OpenFile(path)
		if err != nil {
			return
		}
		defer s.Close()
		for range 10000 {
			d, ci, err := s.Next()
			if err != nil {
				return
			}
			if len(d) != ci.CaptureLength || len(d) > MaxRecord {
				t.Fatalf("data %d bytes, capture length %d", len(d), ci.CaptureLength)
			}
		}
	})
}

func writePcapFuzz(f *testing.F) []byte {
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	w.WriteFileHeader(65536, layers.LinkTypeEthernet)
	w.WritePacket(gopacket.CaptureInfo{Timestamp: t0, CaptureLength: 60, Length: 60}, make([]byte, 60))
	return buf.Bytes()
}
