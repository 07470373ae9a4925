package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// Crafted files: every length a capture states, made as large or as
// many as the format allows, with the data really there (in holes of a
// sparse file, or compressed) so that a reader which trusts a length
// reads it all. Shared by the table test (bounds_test.go) and the memory
// test that runs the binary (rss_test.go).

// crafted is one crafted file and what reading it must give.
type crafted struct {
	name  string
	write func(t testing.TB, path string)
	// packets is the packets read before the end or the error; err, when
	// set, is a substring of the error (none: the file reads to its end);
	// offset is the error's offset.
	packets   int
	err       string
	truncated bool
	offset    int64
}

// frame is a small Ethernet frame (an IPv4 UDP datagram) for the packets
// around the crafted blocks.
var frame = func() []byte {
	f := make([]byte, 60)
	f[12], f[13] = 0x08, 0x00
	f[14] = 0x45
	binary.BigEndian.PutUint16(f[16:], 46)
	f[22], f[23] = 64, 17
	copy(f[26:], []byte{192, 0, 2, 1, 198, 51, 100, 2})
	return f
}()

// sparse writes parts at their offsets and makes the file size bytes
// long: what lies between is a hole that reads as zeros.
func sparse(t testing.TB, path string, size int64, parts map[int64][]byte) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for off, b := range parts {
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
}

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// pcapHead is a little-endian microsecond pcap file header.
func pcapHead(snaplen uint32) []byte {
	h := make([]byte, 24)
	binary.LittleEndian.PutUint32(h[0:], magicPcapMicro)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], snaplen)
	binary.LittleEndian.PutUint32(h[20:], 1)
	return h
}

// pcapRec is a record header for capLen of length bytes.
func pcapRec(capLen, length uint32) []byte {
	return append(append(append(le32(1700000000), le32(0)...), le32(capLen)...), le32(length)...)
}

// ngBlock is a pcapng block of type typ around body (padded to 4).
func ngBlock(typ uint32, body []byte) []byte {
	total := uint32(12 + (len(body)+3)&^3)
	b := append(le32(typ), le32(total)...)
	b = append(b, body...)
	b = append(b, make([]byte, int(total)-8-len(body)-4)...)
	return append(b, le32(total)...)
}

// ngSHB is a little-endian section header; ngIDB an Ethernet interface.
func ngSHB() []byte {
	body := append(le32(ngByteOrder), 1, 0, 0, 0)
	return ngBlock(ngSectionHeader, append(body, bytes.Repeat([]byte{0xff}, 8)...))
}

func ngIDB(opts []byte) []byte {
	return ngBlock(ngInterface, append([]byte{1, 0, 0, 0, 0, 0, 4, 0}, opts...))
}

// ngEPB is an enhanced packet block holding frame on interface 0.
func ngEPB() []byte {
	body := append(le32(0), le32(0)...)
	body = append(body, le32(1)...)
	body = append(body, le32(uint32(len(frame)))...)
	body = append(body, le32(uint32(len(frame)))...)
	return ngBlock(ngEnhancedPkt, append(body, frame...))
}

// ngStart is a section, an interface and one packet.
func ngStart() []byte { return append(append(ngSHB(), ngIDB(nil)...), ngEPB()...) }

func writeBytes(b []byte) func(testing.TB, string) {
	return func(t testing.TB, path string) {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// gzipped writes the gzip of what gen makes: n bytes of blocks, made
// block by block so that the test never holds them all.
func gzipped(n int, head []byte, block []byte, tail []byte) func(testing.TB, string) {
	return func(t testing.TB, path string) {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		zw, _ := gzip.NewWriterLevel(f, gzip.BestCompression)
		zw.Write(head)
		for range n {
			zw.Write(block)
		}
		zw.Write(tail)
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// bigBlock is a block of type typ, total bytes long, whose body is a
// hole: only its head and trailer are written.
func bigBlock(parts map[int64][]byte, at int64, typ, total uint32, head []byte) {
	parts[at] = append(append(le32(typ), le32(total)...), head...)
	parts[at+int64(total)-4] = le32(total)
}

func craftedFiles() []crafted {
	start := ngStart()
	at := int64(len(start))
	// 64 KiB of IPv4 name records (type 1, 6 bytes: an address and "a").
	nrb := ngBlock(4, bytes.Repeat([]byte{1, 0, 6, 0, 192, 0, 2, 1, 'a', 0, 0, 0}, 5460))
	// An interface named with 64 KiB of letters.
	named := ngIDB(append([]byte{2, 0, 0xfc, 0xff}, bytes.Repeat([]byte{'e'}, 0xfffc)...))
	bigNRB := func(typ uint32) func(testing.TB, string) {
		// One block of 60 MiB (below MaxSkippedBlock), gzipped.
		body := make([]byte, 1<<20)
		head := append(append(append([]byte(nil), start...), le32(typ)...), le32(60<<20)...)
		tail := append(make([]byte, 60<<20-8-4-len(body)*59), le32(60<<20)...)
		return gzipped(59, head, body, append(tail, ngEPB()...))
	}
	return []crafted{
		{name: "pcap record claiming 1 GiB", write: func(t testing.TB, p string) {
			sparse(t, p, 24+16+1<<30, map[int64][]byte{0: append(pcapHead(1<<30), pcapRec(1<<30, 1<<30)...)})
		}, err: "more than the 262144", offset: 24},
		{name: "pcap sparse 2 GB record", write: func(t testing.TB, p string) {
			sparse(t, p, 2<<30, map[int64][]byte{0: append(pcapHead(1<<31-1), pcapRec(2<<30-40, 2<<30-40)...)})
		}, err: "more than the 262144", offset: 24},
		{name: "pcap sparse 2 GB of zeros", write: func(t testing.TB, p string) {
			sparse(t, p, 2<<30, map[int64][]byte{0: append(append(pcapHead(65535), pcapRec(60, 60)...), frame...)})
		}, packets: 1, err: "0-byte packet", offset: 24 + 16 + 60},
		{name: "pcap gzip bomb of zeros", write: gzipped(64<<10, append(append(pcapHead(65535), pcapRec(60, 60)...), frame...), make([]byte, 4096), nil),
			packets: 1, err: "0-byte packet", offset: 24 + 16 + 60},
		{name: "pcap cut in a record", write: writeBytes(append(append(append(pcapHead(65535), pcapRec(60, 60)...), frame...), pcapRec(60, 60)...)),
			packets: 1, truncated: true, offset: 24 + 16 + 60},
		{name: "pcap gzip cut", write: func(t testing.TB, p string) {
			gzipped(3000, pcapHead(65535), append(pcapRec(60, 60), frame...), nil)(t, p)
			b, _ := os.ReadFile(p)
			writeBytes(b[:len(b)/2])(t, p)
		}, packets: -1, truncated: true, offset: -1},
		{name: "pcapng packet block claiming 1 GiB", write: func(t testing.TB, p string) {
			parts := map[int64][]byte{0: start}
			bigBlock(parts, at, ngEnhancedPkt, 1<<30+32, append(append(le32(0), make([]byte, 8)...), append(le32(1<<30), le32(1<<30)...)...))
			sparse(t, p, at+1<<30+32, parts)
		}, packets: 1, err: "more than the 393248", offset: at},
		{name: "pcapng packet claiming 1 GiB in a small block", write: writeBytes(append(start, ngBlock(ngEnhancedPkt,
			append(append(le32(0), make([]byte, 8)...), append(le32(1<<30), le32(1<<30)...)...))...)),
			packets: 1, err: "more than the 262144", offset: at},
		{name: "pcapng simple packet block claiming 1 GiB", write: func(t testing.TB, p string) {
			parts := map[int64][]byte{0: start}
			bigBlock(parts, at, ngSimplePacket, 1<<30+16, le32(1<<30))
			sparse(t, p, at+1<<30+16, parts)
		}, packets: 1, err: "more than the 393248", offset: at},
		{name: "pcapng name resolution gzip bomb", write: gzipped(1024, start, nrb, ngEPB()), packets: 2},
		{name: "pcapng name resolution block of 60 MiB", write: bigNRB(4), packets: 2},
		{name: "pcapng custom block of 60 MiB", write: bigNRB(0x40000bad), packets: 2},
		{name: "pcapng statistics block of 60 MiB", write: bigNRB(5), packets: 2},
		{name: "pcapng decryption secrets of 60 MiB", write: bigNRB(10), packets: 2},
		{name: "pcapng unknown block of 60 MiB", write: bigNRB(0x0bad), packets: 2},
		{name: "pcapng name resolution block claiming 1 GiB", write: func(t testing.TB, p string) {
			parts := map[int64][]byte{0: start}
			bigBlock(parts, at, 4, 1<<30, nil)
			sparse(t, p, at+1<<30, parts)
		}, packets: 1, err: "more than the 67108864", offset: at},
		{name: "pcapng section header claiming 1 GiB", write: func(t testing.TB, p string) {
			parts := map[int64][]byte{0: start}
			bigBlock(parts, at, ngSectionHeader, 1<<30, append(le32(ngByteOrder), 1, 0, 0, 0))
			sparse(t, p, at+1<<30, parts)
		}, packets: 1, err: "more than the 67108864", offset: at},
		{name: "pcapng interface blocks of 384 KiB", write: func(t testing.TB, p string) {
			// 2,000 interfaces of the largest block read, options a hole
			// of zeros (end of options), then a packet.
			parts := map[int64][]byte{0: ngSHB()}
			off := int64(len(parts[0]))
			for range 2000 {
				bigBlock(parts, off, ngInterface, maxReadBlock, []byte{1, 0, 0, 0, 0, 0, 4, 0})
				off += maxReadBlock
			}
			parts[off] = ngEPB()
			sparse(t, p, off+int64(len(parts[off])), parts)
		}, packets: 1},
		{name: "pcapng interface blocks past the bound", write: gzipped(MaxInterfaces+1, ngSHB(), named, nil),
			err: "more than 4096 interfaces", offset: int64(len(ngSHB()) + MaxInterfaces*len(named))},
		{name: "pcapng interface option past its block", write: writeBytes(append(append(ngSHB(), ngIDB([]byte{9, 0, 0xff, 0xff})...), ngEPB()...)), packets: 1},
		{name: "pcapng block length not a multiple of 4", write: writeBytes(append(start, append(le32(ngEnhancedPkt), le32(33)...)...)),
			packets: 1, err: "not a multiple of 4", offset: at},
		{name: "pcapng trailing length differs", write: func(t testing.TB, p string) {
			b := append(append([]byte(nil), start...), ngEPB()...)
			b[len(b)-1] = 7
			writeBytes(b)(t, p)
		}, packets: 1, err: "at its end", offset: at},
		{name: "pcapng packet on an undescribed interface", write: func(t testing.TB, p string) {
			b := append(append([]byte(nil), start...), ngEPB()...)
			b[at+8] = 3
			writeBytes(b)(t, p)
		}, packets: 1, err: "interface 3", offset: at},
		{name: "pcapng cut in a block", write: writeBytes(append(append([]byte(nil), start...), ngEPB()[:50]...)),
			packets: 1, truncated: true, offset: at},
		{name: "pcapng cut in a skipped block", write: writeBytes(append(append([]byte(nil), start...), nrb[:1000]...)),
			packets: 1, truncated: true, offset: at},
	}
}

// craftedPath writes c's file in dir.
func craftedPath(t testing.TB, dir string, c crafted) string {
	p := filepath.Join(dir, c.name)
	c.write(t, p)
	return p
}
