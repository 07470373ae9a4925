package asn_test

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/mtuscope/mtuscope/asn"
	"github.com/mtuscope/mtuscope/internal/asntest"
)

const (
	csvV4 = "start,end,asn,org\n" +
		"1.1.1.0,1.1.1.255,13335,\"Cloudflare, Inc.\"\n" +
		"8.8.8.0,8.8.8.255,15169,Google LLC\n" +
		"9.9.9.0,9.9.9.255,19281,Quad9\n" +
		"2.26.200.0,2.26.215.255,201907,\"LLC \"\"SPUTNIK\"\"\"\n"
	csvV6 = "2001:4860::,2001:4860:ffff:ffff:ffff:ffff:ffff:ffff,15169,Google LLC\n"
	tsv   = "1.0.0.0\t1.0.0.255\t13335\tUS\tCLOUDFLARENET\n" +
		"1.0.1.0\t1.0.3.255\t0\tNone\tNot routed\n" +
		"8.8.8.0\t8.8.8.255\t15169\tUS\tGOOGLE\n" +
		"9.9.9.0\t9.9.9.255\t19281\tCH\tQUAD9-AS-1\n" +
		"2001:4860::\t2001:4860:ffff:ffff:ffff:ffff:ffff:ffff\t15169\tUS\tGOOGLE\n"
)

var mmdbRows = []asntest.Row{
	{First: "8.8.8.0", Last: "8.8.8.255", ASN: 15169, Org: "Google LLC"},
	{First: "1.1.1.0", Last: "1.1.1.255", ASN: 13335, Org: "Cloudflare, Inc."},
	{First: "9.9.9.0", Last: "9.9.9.255", ASN: 19281, Org: "Quad9"},
	{First: "2001:4860::", Last: "2001:4860:ffff:ffff:ffff:ffff:ffff:ffff", ASN: 15169, Org: "Google LLC"},
}

func ipinfoRecord(r asntest.Row) mmdbtype.Map {
	return mmdbtype.Map{"asn": mmdbtype.String("AS" + strconv.FormatUint(uint64(r.ASN), 10)), "name": mmdbtype.String(r.Org), "domain": mmdbtype.String("example.com")}
}

// TestImportFormats imports each format and checks the same answers.
func TestImportFormats(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name  string
		files map[string][]byte
		attr  string
		org   string // of 8.8.8.8
	}{
		{"csv", map[string][]byte{"asn-ipv4.csv": []byte(csvV4), "asn-ipv6.csv": []byte(csvV6)}, "CC BY 4.0", "Google LLC"},
		{"csv gz", map[string][]byte{"asn-ipv4.csv.gz": asntest.Gzip(t, []byte(csvV4)), "v6.csv": []byte(csvV6)}, "DB-IP", "Google LLC"},
		{"tsv", map[string][]byte{"ip2asn-combined.tsv": []byte(tsv)}, "iptoasn.com", "GOOGLE"},
		{"tsv gz", map[string][]byte{"ip2asn-combined.tsv.gz": asntest.Gzip(t, []byte(tsv))}, "iptoasn.com", "GOOGLE"},
		{"npm tgz", map[string][]byte{"asn.tgz": asntest.TGZ(t,
			asntest.Member{Name: "package/README.md", Data: []byte("# readme, with, commas\n")},
			asntest.Member{Name: "package/asn-ipv4.csv", Data: []byte(csvV4)},
			asntest.Member{Name: "package/asn-ipv4-num.csv", Data: []byte("16843008,16843263,13335,x\n")},
			asntest.Member{Name: "package/asn-ipv6.csv", Data: []byte(csvV6)})}, "RouteViews", "Google LLC"},
		{"geolite2 mmdb", map[string][]byte{"GeoLite2-ASN.mmdb": asntest.MMDB(t, "GeoLite2-ASN", mmdbRows)}, "MaxMind", "Google LLC"},
		{"dbip mmdb gz", map[string][]byte{"dbip-asn-lite.mmdb.gz": asntest.Gzip(t, asntest.MMDB(t, "DBIP-ASN-Lite (compat=GeoLite2-ASN)", mmdbRows))}, "db-ip.com", "Google LLC"},
		{"ipinfo mmdb", map[string][]byte{"asn.mmdb": asntest.MMDBFunc(t, "ipinfo asn.mmdb", mmdbRows, ipinfoRecord)}, "IPinfo", "Google LLC"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var in []asn.Input
			for name, data := range tc.files {
				in = append(in, asn.Input{Path: asntest.WriteFile(t, t.TempDir(), name, data)})
			}
			db := filepath.Join(dir, tc.name+".db")
			meta, err := asn.Import(db, in, asn.ImportOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(meta.Attribution(), tc.attr) {
				t.Errorf("attribution %q lacks %q", meta.Attribution(), tc.attr)
			}
			tb, err := asn.Load(db)
			if err != nil {
				t.Fatal(err)
			}
			for ip, want := range map[string]uint32{"8.8.8.8": 15169, "1.1.1.1": 13335, "9.9.9.9": 19281,
				"2001:4860:4860::8888": 15169, "::ffff:9.9.9.9": 19281, "192.0.2.1": 0, "1.0.2.1": 0} {
				if tc.name[:3] == "tsv" && ip == "1.1.1.1" {
					want = 0 // not in the TSV fixture
				}
				if got := tb.Lookup(netip.MustParseAddr(ip)); got.ASN != want {
					t.Errorf("%s: AS%d, want AS%d", ip, got.ASN, want)
				}
			}
			if got := tb.Lookup(netip.MustParseAddr("8.8.8.8")).Org; got != tc.org {
				t.Errorf("8.8.8.8 org %q, want %q", got, tc.org)
			}
		})
	}
}

// badInputs are files that must be refused with a clear error.
func badInputs(t *testing.T) []struct {
	name, file string
	data       []byte
	want       string
} {
	mmdb := asntest.MMDB(t, "GeoLite2-ASN", mmdbRows)
	corrupt := bytes.Clone(mmdb)
	for i := 0; i < 64 && i < len(corrupt); i++ {
		corrupt[i] = 0xff
	}
	gz := asntest.Gzip(t, []byte(strings.Repeat(csvV4[18:], 50)))
	badgz := bytes.Clone(gz)
	badgz[len(badgz)/2] ^= 0xff
	badgz[len(badgz)/2+1] ^= 0xff
	tgz := asntest.TGZ(t, asntest.Member{Name: "package/asn-ipv4.csv", Data: []byte(strings.Repeat(csvV4[18:], 50))})
	return []struct {
		name, file string
		data       []byte
		want       string
	}{
		{"csv truncated mid-line", "a.csv", []byte(csvV4 + "9.9.10.0,9.9"), "a.csv:6: 2 fields"},
		{"csv truncated in quotes", "a.csv", []byte(csvV4 + "9.9.10.0,9.9.10.255,1,\"Clou"), "a.csv:6"},
		{"csv garbage line", "a.csv", []byte(csvV4 + "hello,world,this is not\n"), "a.csv:6: range start: \"hello\" is not an IP address"},
		{"csv binary garbage", "a.csv", []byte(csvV4 + "\x00\x01\x02,\xff\xfe,3\n"), "binary content"},
		{"csv too many fields", "a.csv", []byte("1.0.0.0,1.0.0.255,1,a,b\n"), "5 fields"},
		{"csv bad asn", "a.csv", []byte("1.0.0.0,1.0.0.255,AS-1,x\n"), "AS number \"AS-1\""},
		{"csv asn too big", "a.csv", []byte("1.0.0.0,1.0.0.255,4294967296,x\n"), "AS number"},
		{"csv numeric addresses", "a.csv", []byte("16777216,16777471,13335,x\n"), "numeric address"},
		{"csv reversed", "a.csv", []byte("8.8.8.255,8.8.8.0,15169,x\n"), "a.csv:1: reversed range"},
		{"csv overlapping, strict", "a.csv", []byte(csvV4 + "8.8.8.128,8.8.9.0,1,x\n"), "overlapping ranges: a.csv:3 (8.8.8.0-8.8.8.255 AS15169) and a.csv:6"},
		{"csv overlapping sorted, strict", "a.csv", []byte("8.8.8.0,8.8.8.255,15169,G\n8.8.8.128,8.8.9.0,1,x\n9.9.9.0,9.9.9.255,19281,Q\n"), "overlapping ranges: a.csv:1 (8.8.8.0-8.8.8.255 AS15169) and a.csv:2"},
		{"csv one line repeated", "a.csv", []byte(strings.Repeat("8.8.8.0,8.8.8.255,15169,G\n", 30000)), "not an IP-to-ASN dataset: 10001 of 10002 rows overlap"},
		{"csv bare quote", "a.csv", []byte("8.8.8.0,8.8.8.255,15169,G\"x\n"), "a.csv:1: CSV syntax: bare"},
		{"csv text after quote", "a.csv", []byte("8.8.8.0,8.8.8.255,15169,\"G\"x\n"), "a.csv:1: CSV syntax: text after"},
		{"csv long line", "a.csv", []byte("1.0.0.0,1.0.0.1,1," + strings.Repeat("x", 70000) + "\n"), "a.csv:1: line longer than"},
		{"zeros", "a.csv", make([]byte, 10000), "binary content"},
		{"csv mixed family", "a.csv", []byte("8.8.8.0,2001::,1,x\n"), "mixes IPv4 and IPv6"},
		{"csv only not routed", "a.csv", []byte("8.8.8.0,8.8.8.255,0,x\n"), "no range with an AS number"},
		{"tsv truncated", "a.tsv", []byte(tsv + "9.9.10.0\t9.9.10.255\t1"), "a.tsv:6: 3 tab-separated fields"},
		{"tsv garbage", "a.tsv", []byte(tsv + "x\ty\tz\tw\tv\n"), "a.tsv:6: range start"},
		{"tsv reversed", "a.tsv", []byte("8.8.8.255\t8.8.8.0\t15169\tUS\tG\n"), "reversed range"},
		{"tsv numeric", "ip2asn-v4-u32.tsv", []byte("16777216\t16777471\t13335\tUS\tCF\n"), "numeric address"},
		{"tsv long line", "a.tsv", []byte("1.0.0.0\t1.0.0.1\t1\tUS\t" + strings.Repeat("x", 70000) + "\n"), "longer than"},
		{"gz truncated", "a.csv.gz", gz[:len(gz)/2], "gzip"},
		{"gz corrupt", "a.csv.gz", badgz, "a.csv.gz"},
		{"gz header only", "a.csv.gz", gz[:5], "gzip"},
		{"tgz truncated", "asn.tgz", tgz[:len(tgz)*2/3], "asn.tgz"},
		{"tgz without datasets", "asn.tgz", asntest.TGZ(t, asntest.Member{Name: "package/README.md", Data: []byte("hi")}), "no dataset"},
		{"mmdb truncated", "GeoLite2-ASN.mmdb", mmdb[:len(mmdb)/2], "truncated"},
		{"mmdb corrupt tree", "GeoLite2-ASN.mmdb", corrupt, "MMDB"},
		{"wrong format png", "x.csv", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), "unrecognised format: binary content"},
		{"wrong format json", "x.json", []byte(`{"asn": 15169}` + "\n"), "unrecognised format"},
		{"wrong format json with commas", "x.json", []byte(`{"a": 1, "b": 2, "c": 3}` + "\n"), "x.json:1: CSV syntax"},
		{"empty", "a.csv", nil, "empty file"},
		{"our own database", "asn.db", nil, "binary content"}, // data filled in below
	}
}

// TestImportBadInput checks that each bad file is refused with a clear
// error and leaves the previous database byte for byte as it was.
func TestImportBadInput(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "asn.db")
	good := asntest.WriteFile(t, dir, "good.csv", []byte(csvV4))
	if _, err := asn.Import(db, []asn.Input{{Path: good}}, asn.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range badInputs(t) {
		t.Run(tc.name, func(t *testing.T) {
			data := tc.data
			if tc.file == "asn.db" {
				data = before
			}
			f := asntest.WriteFile(t, t.TempDir(), tc.file, data)
			_, err := asn.Import(db, []asn.Input{{Path: f, Name: tc.file}}, asn.ImportOptions{Strict: strings.HasSuffix(tc.name, ", strict")})
			if err == nil {
				t.Fatalf("import succeeded, want an error mentioning %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			after, err := os.ReadFile(db)
			if err != nil || !bytes.Equal(before, after) {
				t.Fatalf("database changed by a failed import (%v)", err)
			}
			tb, err := asn.Load(db)
			if err != nil || tb.Lookup(netip.MustParseAddr("8.8.8.8")).ASN != 15169 {
				t.Fatalf("old database unusable after a failed import: %v", err)
			}
		})
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("data directory holds %d entries after failed imports, want asn.db and good.csv", len(ents))
	}
}

func TestImportAttributionOverride(t *testing.T) {
	dir := t.TempDir()
	f := asntest.WriteFile(t, dir, "a.csv", []byte(csvV4))
	meta, err := asn.Import(filepath.Join(dir, "asn.db"), []asn.Input{{Path: f}}, asn.ImportOptions{Attribution: "Data by Example Corp, CC BY 4.0"})
	if err != nil || meta.Attribution() != "Data by Example Corp, CC BY 4.0" {
		t.Errorf("attribution %q, err %v", meta.Attribution(), err)
	}
}

func TestDefaultDir(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", "/srv/data")
	if d, _ := asn.DefaultDir(); d != "/srv/data/mtuscope" {
		t.Errorf("with XDG_DATA_HOME: %s", d)
	}
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("HOME", "/home/op")
	if d, _ := asn.DefaultDir(); d != "/home/op/.local/share/mtuscope" {
		t.Errorf("without XDG_DATA_HOME: %s", d)
	}
}
