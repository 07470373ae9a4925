package asn_test

import (
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mtuscope/mtuscope/asn"
	"github.com/mtuscope/mtuscope/internal/asntest"
)

// gzipRepeated writes a gzip file holding block n times: n gzip members of
// one compressed block each, which is a valid gzip stream (RFC 1952) and
// costs one compression, whatever n.
func gzipRepeated(t *testing.T, path string, block []byte, n int) {
	t.Helper()
	var one bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&one, gzip.BestCompression)
	zw.Write(block)
	zw.Close()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for range n {
		if _, err := f.Write(one.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
}

// maxRSSMB bounds the peak memory of an import of hostile input: the limit
// the real 515k-range package is held to.
const maxRSSMB = 150

// TestImportBoundedMemory imports hostile files in a child process and
// checks that each ends with a clear error within maxRSSMB of peak resident
// memory (the child's rusage), whatever the size of the decompressed input.
func TestImportBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("decompresses more than 1 GiB")
	}
	dir := t.TempDir()
	line := "8.8.8.0,8.8.8.255,15169,Google LLC\n"
	comment := "# " + strings.Repeat("x", 1021) + "\n"
	for _, tc := range []struct {
		name  string
		block string
		n     int
		want  string
	}{
		// 10,000,000 copies of one line: 350 MB of text in 200 KB of gzip.
		{"ten million repeated lines", strings.Repeat(line, 100000), 100, "not an IP-to-ASN dataset: 10001 of 10002 rows overlap"},
		// 1.1 GiB of comment lines and a data line a MiB: every line is
		// fine, the size is not.
		{"gzip bomb of text", line + strings.Repeat(comment, 1023), 1100, "decompressed data larger than 1073741824 bytes"},
		// 1.1 GiB of zeros.
		{"gzip bomb of zeros", string(make([]byte, 1<<20)), 1100, "binary content"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".csv.gz")
			gzipRepeated(t, path, []byte(tc.block), tc.n)
			info, _ := os.Stat(path)
			cmd := exec.Command(os.Args[0], "-test.run=^TestImportChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), "MTUSCOPE_IMPORT_CHILD="+path, "MTUSCOPE_IMPORT_DB="+filepath.Join(dir, "asn.db"))
			out, _ := cmd.CombinedOutput()
			ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
			if !ok {
				t.Skip("no rusage on this OS")
			}
			rss := ru.Maxrss / 1024 // kB on Linux
			t.Logf("%s (%d bytes of gzip): peak RSS %d MB; %s", tc.name, info.Size(), rss, bytes.TrimSpace(out))
			if !bytes.Contains(out, []byte("import error: ")) || !bytes.Contains(out, []byte(tc.want)) {
				t.Errorf("child output does not hold the error %q:\n%s", tc.want, out)
			}
			if rss > maxRSSMB {
				t.Errorf("peak RSS %d MB, more than %d MB", rss, maxRSSMB)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "asn.db")); err == nil {
		t.Error("a failed import wrote a database")
	}
	// The real package (515k ranges, 18.7 MB .tgz) imports within the same
	// bound.
	t.Run("the real package", func(t *testing.T) {
		tgz := asntest.IPLocationDB(t)
		cmd := exec.Command(os.Args[0], "-test.run=^TestImportChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "MTUSCOPE_IMPORT_CHILD="+tgz, "MTUSCOPE_IMPORT_DB="+filepath.Join(dir, "real.db"))
		out, err := cmd.CombinedOutput()
		if err != nil || bytes.Contains(out, []byte("import error")) {
			t.Fatalf("%v: %s", err, out)
		}
		rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss / 1024
		t.Logf("%s: peak RSS %d MB", filepath.Base(tgz), rss)
		if rss > maxRSSMB {
			t.Errorf("peak RSS %d MB, more than %d MB", rss, maxRSSMB)
		}
	})
}

// TestImportChild is the child of TestImportBoundedMemory; it does nothing
// in a normal test run.
func TestImportChild(t *testing.T) {
	path := os.Getenv("MTUSCOPE_IMPORT_CHILD")
	if path == "" {
		return
	}
	_, err := asn.Import(os.Getenv("MTUSCOPE_IMPORT_DB"), []asn.Input{{Path: path, Name: filepath.Base(path)}}, asn.ImportOptions{})
	if err != nil {
		os.Stdout.WriteString("import error: " + err.Error() + "\n")
	}
}
