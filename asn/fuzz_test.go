package asn_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/mtuscope/mtuscope/asn"
	"github.com/mtuscope/mtuscope/internal/asntest"
)

// checkBuilt builds parsed ranges strictly and, when that succeeds, checks
// that the table survives an encode/decode trip and answers each range's
// ends with its AS.
func checkBuilt(t *testing.T, rs []asn.Range) {
	tb, err := asn.Build([]asn.Source{{Name: "fuzz", Ranges: rs}}, asn.BuildOptions{Strict: true})
	if err != nil {
		// The default build must not fail on overlaps alone.
		if _, err := asn.Build([]asn.Source{{Name: "fuzz", Ranges: rs}}, asn.BuildOptions{}); errors.Is(err, asn.ErrOverlap) {
			t.Fatalf("the default build failed on an overlap: %v", err)
		}
		return
	}
	b, err := tb.Encode()
	if err != nil {
		t.Fatal(err)
	}
	dec, err := asn.Decode(b)
	if err != nil {
		t.Fatalf("decode of an encoded table: %v", err)
	}
	for _, r := range rs {
		if r.ASN == 0 {
			continue
		}
		if got := dec.Lookup(r.First); got.ASN != r.ASN || !got.Prefix.Contains(asn.Normalize(r.First)) {
			t.Fatalf("%s: AS%d %s, want AS%d", r.First, got.ASN, got.Prefix, r.ASN)
		}
		if got := dec.Lookup(r.Last); got.ASN != r.ASN {
			t.Fatalf("%s: AS%d, want AS%d", r.Last, got.ASN, r.ASN)
		}
	}
}

// craftedText are inputs that must not panic the text parsers.
var craftedText = []string{
	"", "\n\n", ",,,", ",,,\n,,,", "\t\t\t\t", "\"", "#", "#\n#", "\r\n",
	"start,end,asn,org\n",
	"0.0.0.0,255.255.255.255,1,all\n",
	"::,ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff,1,all\n",
	"::ffff:1.2.3.4,::ffff:1.2.3.255,5,mapped\n",
	"fe80::1%eth0,fe80::2%eth0,1,zoned\n",
	"1.0.0.0,1.0.0.0,1\n1.0.0.1,1.0.0.1,1\n",
	"1.0.0.0,1.0.0.255,AS,x\n", "1.0.0.0,1.0.0.255,as7,x\n",
	"1.0.0.0,1.0.0.255,-1,x\n", "1.0.0.0,1.0.0.255,+1,x\n",
	"1.0.0.0,1.0.0.255,99999999999999999999,x\n",
	"1.0.0.0\t1.0.0.255\t1\tUS\tX\n", "1.0.0.0\t1.0.0.255\t0\tNone\tNot routed\n",
	"\t\t\t\t\n", "1.0.0.0\t\t\t\t\n",
	"1.2.3.4,1.2.3.4,1,\"a\"\"b\"\n", "1.2.3.4,1.2.3.4,1,\"unterminated\n",
	"1.2.3.4,1.2.3.4,1,\xff\xfe\n",
	// The line-based CSV splitter: quotes in every position.
	"1.2.3.4,1.2.3.4,1,\"a\"x\n", "1.2.3.4,1.2.3.4,1,a\"b\n", "\"1.2.3.4\",\"1.2.3.4\",\"1\",\"q\"\n",
	"1.2.3.4,1.2.3.4,1,\"\"\n", "1.2.3.4,1.2.3.4,1,\"\"\"\"\n", "1.2.3.4,1.2.3.4,1,\"a,\n", "\"\n\"\n",
	"1.2.3.4,1.2.3.4,1,\"x\"\r\n", "1.2.3.4,1.2.3.4,1,x,\n", ",1.2.3.4,1.2.3.4,1\n",
	// Repeated and nested rows.
	"1.0.0.0,1.0.0.255,1,a\n1.0.0.0,1.0.0.255,1,a\n1.0.0.0,1.0.0.255,2,b\n",
	"1.0.0.0,1.0.255.255,1,a\n1.0.0.0,1.0.0.255,2,b\n1.0.0.128,1.0.0.200,3,c\n0.0.0.0,0.0.0.1,4,d\n",
}

func FuzzParseCSV(f *testing.F) {
	f.Add([]byte(csvV4))
	f.Add([]byte(csvV6))
	for _, s := range craftedText {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := asn.ParseCSV(bytes.NewReader(data), "fuzz.csv")
		if err == nil {
			checkBuilt(t, rs)
		}
	})
}

func FuzzParseTSV(f *testing.F) {
	f.Add([]byte(tsv))
	for _, s := range craftedText {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := asn.ParseTSV(bytes.NewReader(data), "fuzz.tsv")
		if err == nil {
			checkBuilt(t, rs)
		}
	})
}

// FuzzReadData feeds the format detection, gzip, tar and MMDB paths.
func FuzzReadData(f *testing.F) {
	f.Add([]byte(csvV4))
	f.Add([]byte(tsv))
	f.Add(asntest.Gzip(f, []byte(csvV4)))
	f.Add(asntest.Gzip(f, asntest.Gzip(f, asntest.Gzip(f, []byte(csvV4)))))
	f.Add(asntest.TGZ(f, asntest.Member{Name: "package/asn-ipv4.csv", Data: []byte(csvV4)}))
	f.Add(asntest.TGZ(f, asntest.Member{Name: "inner.tgz.csv", Data: asntest.TGZ(f, asntest.Member{Name: "a.csv", Data: []byte(csvV4)})}))
	mmdb := asntest.MMDB(f, "GeoLite2-ASN", mmdbRows)
	f.Add(mmdb)
	f.Add(mmdb[len(mmdb)/2:])
	f.Add(asntest.MMDBFunc(f, "ipinfo", mmdbRows, ipinfoRecord))
	for _, s := range craftedText {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		srcs, err := asn.ReadData(data, "fuzz")
		if err == nil {
			_, _ = asn.Build(srcs, asn.BuildOptions{})
		}
	})
}

// FuzzDecode checks that a damaged database file is an error, never a panic.
func FuzzDecode(f *testing.F) {
	rs, err := asn.ParseCSV(bytes.NewReader([]byte(csvV4+csvV6)), "seed")
	if err != nil {
		f.Fatal(err)
	}
	tb, err := asn.Build([]asn.Source{{Name: "seed", Ranges: rs}}, asn.BuildOptions{})
	if err != nil {
		f.Fatal(err)
	}
	b, err := tb.Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Add([]byte("MTUSASN\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if tb, err := asn.Decode(data); err == nil {
			tb.Lookup(rs[0].First)
		}
		// Past the checksum too: fix it up so mutations reach the parser.
		if len(data) >= 4 {
			body := data[:len(data)-4]
			fixed := binary.LittleEndian.AppendUint32(bytes.Clone(body), crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
			if tb, err := asn.Decode(fixed); err == nil {
				tb.Lookup(rs[0].First)
				tb.Lookup(rs[len(rs)-1].Last)
			}
		}
	})
}
