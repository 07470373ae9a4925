package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// TestPcapReaderAgreesWithPcapgo reads the same files, whole and cut at
// every few bytes, with the package's pcap reader and with pcapgo's: the
// same records, timestamps and lengths, and an error at the same record.
func TestPcapReaderAgreesWithPcapgo(t *testing.T) {
	frames := testFrames(40)
	big := make([]byte, MaxRecord) // the largest record read
	for i := range big {
		big[i] = byte(i * 7)
	}
	bigFile := bigPcap(t, big)
	files := map[string][]byte{
		"micro":      writePcap(t, frames, false),
		"nano":       writePcap(t, frames, true),
		"big-endian": bigEndian(t, writePcap(t, frames, true)),
		"big record": bigFile,
	}
	for name, data := range files {
		cuts := []int{len(data)}
		for c := 0; c < len(data) && c < 4000; c += 13 {
			cuts = append(cuts, c)
		}
		cuts = append(cuts, len(data)-1, len(data)-17, len(data)-len(data)/3)
		for _, cut := range cuts {
			in := data[:cut]
			want, wantErr := readPcapgo(in)
			got, gotErr := readOurs(in)
			if wantErr == nil && errors.Is(gotErr, io.ErrUnexpectedEOF) && cut-consumed(want) == 16 {
				// Cut right after a record header: pcapgo reads no data,
				// gets io.EOF and takes the file for complete; this reader
				// says it was cut.
				wantErr = gotErr
			}
			if len(got) != len(want) || (wantErr == nil) != (gotErr == nil) {
				t.Fatalf("%s cut at %d: %d records (err %v), pcapgo %d (err %v)", name, cut, len(got), gotErr, len(want), wantErr)
			}
			for i := range got {
				if !bytes.Equal(got[i].data, want[i].data) || !got[i].ts.Equal(want[i].ts) || got[i].ts.Location() != want[i].ts.Location() ||
					got[i].capLen != want[i].capLen || got[i].length != want[i].length {
					t.Fatalf("%s cut at %d: record %d differs", name, cut, i)
				}
			}
			if gotErr != nil && errors.Is(wantErr, io.ErrUnexpectedEOF) != errors.Is(gotErr, io.ErrUnexpectedEOF) {
				t.Fatalf("%s cut at %d: error %v, pcapgo %v", name, cut, gotErr, wantErr)
			}
		}
	}
}

// consumed is the bytes of the file header and records.
func consumed(rs []rec) int {
	n := 24
	for _, r := range rs {
		n += 16 + r.capLen
	}
	return n
}

type rec struct {
	data           []byte
	ts             time.Time
	capLen, length int
}

func readPcapgo(b []byte) ([]rec, error) {
	r, err := pcapgo.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	var out []rec
	for {
		d, ci, err := r.ZeroCopyReadPacketData()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, rec{append([]byte(nil), d...), ci.Timestamp, ci.CaptureLength, ci.Length})
	}
}

func readOurs(b []byte) ([]rec, error) {
	// One byte at a time at first, to exercise short reads.
	r, err := newPcapReader(newInput(io.MultiReader(io.LimitReader(bytes.NewReader(b), 100), bytes.NewReader(b[min(len(b), 100):]))))
	if err != nil {
		return nil, err
	}
	var out []rec
	for {
		d, ts, c, l, err := r.next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, rec{append([]byte(nil), d...), ts, c, l})
	}
}

// bigPcap is a pcap file with a 4 MiB snap length holding a small record,
// one of len(big) bytes, and another small one.
func bigPcap(t *testing.T, big []byte) []byte {
	var buf bytes.Buffer
	h := make([]byte, 24)
	binary.LittleEndian.PutUint32(h[0:], magicPcapNano)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], 4<<20)
	binary.LittleEndian.PutUint32(h[20:], 1)
	buf.Write(h)
	for i, d := range [][]byte{big[:60], big, big[:100]} {
		r := make([]byte, 16)
		binary.LittleEndian.PutUint32(r[0:], uint32(1700000000+i))
		binary.LittleEndian.PutUint32(r[4:], uint32(i*1000))
		binary.LittleEndian.PutUint32(r[8:], uint32(len(d)))
		binary.LittleEndian.PutUint32(r[12:], uint32(len(d)))
		buf.Write(r)
		buf.Write(d)
	}
	return buf.Bytes()
}

// bigEndian rewrites a little-endian pcap file as big-endian.
func bigEndian(t *testing.T, le []byte) []byte {
	b := append([]byte(nil), le...)
	sw32 := func(o int) { binary.BigEndian.PutUint32(b[o:], binary.LittleEndian.Uint32(b[o:])) }
	sw16 := func(o int) { binary.BigEndian.PutUint16(b[o:], binary.LittleEndian.Uint16(b[o:])) }
	sw32(0)
	sw16(4)
	sw16(6)
	for _, o := range []int{8, 12, 16, 20} {
		sw32(o)
	}
	for o := 24; o+16 <= len(b); {
		for _, f := range []int{0, 4, 8, 12} {
			sw32(o + f)
		}
		o += 16 + int(binary.BigEndian.Uint32(b[o+8:]))
	}
	return b
}

// TestPcapngReaderAgreesWithPcapgo reads well-formed pcapng files (two
// interfaces of two link types, an unknown block between packets), whole
// and cut at every few bytes, with the package's reader and pcapgo's: the
// same packets, and a cut inside a block reported as a truncation.
func TestPcapngReaderAgreesWithPcapgo(t *testing.T) {
	data := writePcapng(t, testFrames(40))
	for cut := 0; cut <= len(data); cut += 7 {
		if cut+7 > len(data) {
			cut = len(data)
		}
		in := data[:cut]
		var want []gopacket.CaptureInfo
		var wantData [][]byte
		if r, err := pcapgo.NewNgReader(bytes.NewReader(in), pcapgo.NgReaderOptions{WantMixedLinkType: true}); err == nil {
			for {
				d, ci, err := r.ReadPacketData()
				if err != nil {
					break
				}
				want, wantData = append(want, ci), append(wantData, d)
			}
		}
		r, err := newNgReader(newInput(bytes.NewReader(in)))
		var n int
		for err == nil {
			var rec ngRecord
			if rec, err = r.next(); err != nil {
				break
			}
			if n >= len(want) {
				t.Fatalf("cut at %d: packet %d, pcapgo read %d", cut, n, len(want))
			}
			w := want[n]
			if !bytes.Equal(rec.data, wantData[n]) || !rec.ts.Equal(w.Timestamp) || rec.capLen != w.CaptureLength ||
				rec.length != w.Length || rec.iface != w.InterfaceIndex || uint16(rec.link) != uint16(w.AncillaryData[0].(layers.LinkType)) {
				t.Fatalf("cut at %d: packet %d differs: %+v, pcapgo %+v", cut, n, rec, w)
			}
			n++
		}
		if n != len(want) {
			t.Fatalf("cut at %d: %d packets, pcapgo %d", cut, n, len(want))
		}
		if cut == len(data) && err != io.EOF || cut < len(data) && err != io.EOF && err != io.ErrUnexpectedEOF {
			t.Fatalf("cut at %d of %d: error %v", cut, len(data), err)
		}
	}
}
