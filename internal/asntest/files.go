package asntest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// WriteFile writes data to dir/name and returns the path.
func WriteFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Gzip compresses b.
func Gzip(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Member is one file of a tar package.
type Member struct {
	Name string
	Data []byte
}

// TGZ builds a gzipped tar package such as `npm pack` writes.
func TGZ(t testing.TB, members ...Member) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range members {
		if err := tw.WriteHeader(&tar.Header{Name: m.Name, Mode: 0o644, Size: int64(len(m.Data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(m.Data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return Gzip(t, buf.Bytes())
}

// MMDBFunc is like MMDB with the record of each row built by rec, for the
// field layouts of other vendors.
func MMDBFunc(t testing.TB, dbType string, rows []Row, rec func(Row) mmdbtype.Map) []byte {
	t.Helper()
	w, err := NewMMDBWriter(dbType)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		first, last := netip.MustParseAddr(r.First), netip.MustParseAddr(r.Last)
		if err := w.InsertRange(first.AsSlice(), last.AsSlice(), rec(r)); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
