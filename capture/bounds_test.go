package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestCraftedFiles reads a crafted file for every length a capture
// states (records, each pcapng block type, interfaces, a sparse file, gzip
// bombs, cuts): each ends where it must, with the error or the truncation
// at the right offset, and reading it allocates no more than the reader's
// fixed buffers whatever the file claims.
func TestCraftedFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("reads several gigabytes of holes")
	}
	dir := t.TempDir()
	for _, c := range craftedFiles() {
		t.Run(c.name, func(t *testing.T) {
			path := craftedPath(t, dir, c)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			n, err := readCount(path)
			runtime.ReadMemStats(&after)
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%d packets, %d KiB allocated; %v", n, alloc>>10, err)
			// The input buffer, bufio's and gzip's: a little over 1 MiB.
			if alloc > 4<<20 {
				t.Errorf("%d KiB allocated reading the file, want at most 4 MiB", alloc>>10)
			}
			if c.packets >= 0 && n != c.packets || c.packets < 0 && n == 0 {
				t.Errorf("%d packets, want %d", n, c.packets)
			}
			var fe *FileError
			switch {
			case c.err == "" && !c.truncated:
				if err != nil {
					t.Fatalf("error %v, want the file read to its end", err)
				}
				return
			case !errors.As(err, &fe) || fe.Path != path:
				t.Fatalf("error %v, want a *FileError naming the file", err)
			case c.truncated != errors.Is(err, ErrTruncated):
				t.Errorf("error %v: truncation %v, want %v", err, errors.Is(err, ErrTruncated), c.truncated)
			case !strings.Contains(err.Error(), c.err):
				t.Errorf("error %v, want it to say %q", err, c.err)
			}
			want := c.offset
			if want < 0 { // a cut gzip: the record after the last read
				want = 24 + int64(n)*(16+int64(len(frame)))
			}
			if fe.Offset != want {
				t.Errorf("error at byte %d, want %d", fe.Offset, want)
			}
		})
	}
}

// readCount reads a file to its end or its first error, keeping nothing.
func readCount(path string) (int, error) {
	s, err := OpenFile(path)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	for n := 0; ; n++ {
		if _, _, err := s.Next(); err != nil {
			if err == io.EOF {
				err = nil
			}
			return n, err
		}
	}
}

// TestPcapngTimestampUnits converts timestamps in decimal and binary
// units, with an offset, exactly (pcapgo rounds binary units down to a
// whole number of nanoseconds per unit).
func TestPcapngTimestampUnits(t *testing.T) {
	for _, tc := range []struct {
		resol  byte
		offset int64
		ts     uint64
		want   time.Time
	}{
		{6, 0, 1700000000_123456, time.Unix(1700000000, 123456000)},
		{9, 10, 1700000000_123456789, time.Unix(1700000010, 123456789)},
		{3, -5, 1700000000_999, time.Unix(1699999995, 999000000)},
		{0x80 | 20, 0, 1700000000<<20 | 1<<19, time.Unix(1700000000, 500000000)},
		{0x80 | 30, 0, 3<<30 | 1, time.Unix(3, 0)}, // 2^-30 s is 0.93 ns: rounds down
	} {
		b := append(ngSHB(), ngIDB([]byte{ngOptTSResol, 0, 1, 0, tc.resol, 0, 0, 0, ngOptTSOffset, 0, 8, 0})...)
		b = binary.LittleEndian.AppendUint64(b[:len(b)-4], uint64(tc.offset))
		// Fix the interface block's lengths for the offset's 8 bytes.
		idb := b[len(ngSHB()):]
		total := uint32(len(idb) + 4)
		binary.LittleEndian.PutUint32(idb[4:], total)
		b = binary.LittleEndian.AppendUint32(b, total)
		r, err := newNgReader(newInput(bytes.NewReader(b)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.next(); err != io.EOF {
			t.Fatalf("resolution %#x: %v", tc.resol, err)
		}
		if got := r.ifaces[0].time(tc.ts); !got.Equal(tc.want) {
			t.Errorf("resolution %#x offset %d: %v, want %v", tc.resol, tc.offset, got, tc.want)
		}
	}
}
