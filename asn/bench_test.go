package asn_test

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/mtuscope/mtuscope/asn"
	"github.com/mtuscope/mtuscope/internal/asntest"
)

// The benchmarks compare the chosen store (asn.Table) with maxminddb-golang
// reading an MMDB of the same data written by mmdbwriter, on the real
// @ip-location-db/asn data. They run only with -bench:
//
//	go test ./asn/ -run '^$' -bench . -benchtime 2s -cpu 1

type benchData struct {
	dir      string
	db, mmdb string
	sample   []netip.Addr
	importS  float64 // seconds to import the package
	mmdbS    float64 // seconds for mmdbwriter to build the MMDB
}

var (
	benchOnce sync.Once
	bench     benchData
)

func setupBench(b *testing.B) *benchData {
	benchOnce.Do(func() {
		tgz := asntest.IPLocationDB(b)
		dir, err := os.MkdirTemp("", "mtuscope-asn-bench-")
		if err != nil {
			b.Fatal(err)
		}
		bench.dir = dir
		bench.db = filepath.Join(dir, "asn.db")
		start := time.Now()
		if _, err := asn.Import(bench.db, []asn.Input{{Path: tgz}}, asn.ImportOptions{}); err != nil {
			b.Fatal(err)
		}
		bench.importS = time.Since(start).Seconds()

		srcs, err := asn.ReadFile(tgz, filepath.Base(tgz))
		if err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		w, err := asntest.NewMMDBWriter("ip-location-db-asn")
		if err != nil {
			b.Fatal(err)
		}
		var all []asn.Range
		for _, s := range srcs {
			for _, r := range s.Ranges {
				if err := asntest.InsertRange(w, r.First, r.Last, r.ASN, r.Org); err != nil {
					b.Fatal(err)
				}
			}
			all = append(all, s.Ranges...)
		}
		var buf bytes.Buffer
		if _, err := w.WriteTo(&buf); err != nil {
			b.Fatal(err)
		}
		bench.mmdbS = time.Since(start).Seconds()
		bench.mmdb = asntest.WriteFile(b, dir, "asn.mmdb", buf.Bytes())

		// Addresses inside random ranges, 4 IPv4 to 1 IPv6, plus some
		// outside any range; the same sample for both stores.
		r := rand.New(rand.NewPCG(7, 7))
		for range 1 << 16 {
			rg := all[r.IntN(len(all))]
			a := rg.First
			for k := r.IntN(64); k > 0 && a.Less(rg.Last); k-- {
				a = a.Next()
			}
			bench.sample = append(bench.sample, a)
		}
		for range 1 << 12 {
			bench.sample[r.IntN(len(bench.sample))] = netip.AddrFrom4([4]byte{byte(r.IntN(256)), byte(r.IntN(256)), 2, 1})
		}
	})
	if bench.db == "" {
		b.Fatal("benchmark setup failed")
	}
	return &bench
}

type mmdbASN struct {
	Number uint32 `maxminddb:"autonomous_system_number"`
	Org    string `maxminddb:"autonomous_system_organization"`
}

var sinkN int

// BenchmarkLookup measures lookups per second per core: ASN, organisation
// and prefix for each address, from both stores.
func BenchmarkLookup(b *testing.B) {
	d := setupBench(b)
	tb, err := asn.Load(d.db)
	if err != nil {
		b.Fatal(err)
	}
	mr, err := maxminddb.Open(d.mmdb)
	if err != nil {
		b.Fatal(err)
	}
	defer mr.Close()
	// Both stores must agree before their speed means anything.
	for _, a := range d.sample[:4096] {
		var rec mmdbASN
		res := mr.Lookup(a)
		if err := res.Decode(&rec); err != nil {
			b.Fatal(err)
		}
		if got := tb.Lookup(a); got.ASN != rec.Number || got.Org != rec.Org {
			b.Fatalf("%s: table AS%d %q, mmdb AS%d %q", a, got.ASN, got.Org, rec.Number, rec.Org)
		}
	}
	n := len(d.sample)
	perSec := func(b *testing.B) {
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
	}
	b.Run("store=mtuscope", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			r := tb.Lookup(d.sample[i%n])
			sinkN += int(r.ASN) + len(r.Org) + r.Prefix.Bits()
		}
		perSec(b)
	})
	b.Run("store=maxminddb", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			res := mr.Lookup(d.sample[i%n])
			var rec mmdbASN
			if err := res.Decode(&rec); err != nil {
				b.Fatal(err)
			}
			sinkN += int(rec.Number) + len(rec.Org) + res.Prefix().Bits()
		}
		perSec(b)
	})
	b.Run("store=mtuscope/parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			s, i := 0, rand.IntN(n)
			for pb.Next() {
				r := tb.Lookup(d.sample[i%n])
				s += int(r.ASN) + len(r.Org)
				i++
			}
			_ = s
		})
		perSec(b)
	})
	b.Run("store=maxminddb/parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			s, i := 0, rand.IntN(n)
			for pb.Next() {
				var rec mmdbASN
				_ = mr.Lookup(d.sample[i%n]).Decode(&rec)
				s += int(rec.Number) + len(rec.Org)
				i++
			}
			_ = s
		})
		perSec(b)
	})
}

// BenchmarkLoad reports, for each store, the time to open the database and
// the resident memory of a fresh process after loading it and answering
// every address of the sample once (so that mmap'd pages count too).
func BenchmarkLoad(b *testing.B) {
	d := setupBench(b)
	for _, store := range []string{"mtuscope", "maxminddb"} {
		b.Run("store="+store, func(b *testing.B) {
			for b.Loop() {
				if store == "mtuscope" {
					if _, err := asn.Load(d.db); err != nil {
						b.Fatal(err)
					}
				} else {
					mr, err := maxminddb.Open(d.mmdb)
					if err != nil {
						b.Fatal(err)
					}
					mr.Close()
				}
			}
			rss, err := childRSS(store, d)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(rss, "MB-rss")
		})
	}
}

// BenchmarkImport reports the time to build each store from the package:
// asn.Import (read, parse, build, write) against mmdbwriter (insert the
// parsed ranges and write; parsing not counted).
func BenchmarkImport(b *testing.B) {
	d := setupBench(b)
	b.Run("store=mtuscope", func(b *testing.B) {
		tgz := asntest.IPLocationDB(b)
		for b.Loop() {
			if _, err := asn.Import(filepath.Join(d.dir, "again.db"), []asn.Input{{Path: tgz}}, asn.ImportOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/import")
	})
	b.Run("store=maxminddb", func(b *testing.B) {
		b.ReportMetric(d.mmdbS, "s/import") // measured once in the setup
	})
}

// childRSS runs this test binary again to load one store in a fresh
// process and returns its resident memory in MB.
func childRSS(store string, d *benchData) (float64, error) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestRSSChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "MTUSCOPE_RSS_STORE="+store, "MTUSCOPE_RSS_DB="+d.db, "MTUSCOPE_RSS_MMDB="+d.mmdb,
		"MTUSCOPE_RSS_SAMPLE="+strconv.Itoa(len(d.sample)))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%v: %s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "rss_kb="); ok {
			kb, err := strconv.ParseFloat(v, 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no rss in %s", out)
}

// TestRSSChild is the child process of childRSS; it does nothing in a
// normal test run.
func TestRSSChild(t *testing.T) {
	store := os.Getenv("MTUSCOPE_RSS_STORE")
	if store == "" {
		return
	}
	var lookup func(netip.Addr) uint32
	if store == "mtuscope" {
		tb, err := asn.Load(os.Getenv("MTUSCOPE_RSS_DB"))
		if err != nil {
			t.Fatal(err)
		}
		lookup = func(a netip.Addr) uint32 { return tb.Lookup(a).ASN }
	} else {
		mr, err := maxminddb.Open(os.Getenv("MTUSCOPE_RSS_MMDB"))
		if err != nil {
			t.Fatal(err)
		}
		lookup = func(a netip.Addr) uint32 {
			var rec mmdbASN
			_ = mr.Lookup(a).Decode(&rec)
			return rec.Number
		}
	}
	r := rand.New(rand.NewPCG(1, 1))
	for range 1 << 20 {
		b := r.Uint32()
		sinkN += int(lookup(netip.AddrFrom4([4]byte{byte(b >> 24), byte(b >> 16), byte(b >> 8), byte(b)})))
	}
	runtime.GC()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			fmt.Printf("rss_kb=%s\n", strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
}
