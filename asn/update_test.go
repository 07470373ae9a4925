package asn_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/asn"
)

// dataServer serves fixture files with ETag and Last-Modified through
// http.ServeContent, which answers conditional requests, and records the
// conditional headers of every request.
type dataServer struct {
	mu      sync.Mutex
	files   map[string][]byte
	etags   bool
	cut     map[string]bool // send half the body, then drop the connection
	headers []http.Header
	srv     *httptest.Server
}

func newDataServer(t *testing.T, files map[string][]byte) *dataServer {
	d := &dataServer{files: files, etags: true, cut: map[string]bool{}}
	d.srv = httptest.NewServer(http.HandlerFunc(d.serve))
	t.Cleanup(d.srv.Close)
	return d
}

var modTime = time.Date(2026, 6, 17, 19, 0, 0, 0, time.UTC)

func (d *dataServer) serve(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	data, ok := d.files[r.URL.Path]
	cut, etags := d.cut[r.URL.Path], d.etags
	d.headers = append(d.headers, r.Header.Clone())
	d.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	if cut {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(http.StatusOK)
		w.Write(data[:len(data)/2])
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	if etags {
		w.Header().Set("ETag", strconv.Quote(strconv.Itoa(len(data))+"-"+strconv.Itoa(int(data[len(data)/2]))))
	}
	http.ServeContent(w, r, "", modTime.Add(time.Duration(len(data))*time.Second), bytes.NewReader(data))
}

func (d *dataServer) set(path string, data []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.files[path] = data
}

func (d *dataServer) last() http.Header {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.headers[len(d.headers)-1]
}

func (d *dataServer) urls(paths ...string) []string {
	var out []string
	for _, p := range paths {
		out = append(out, d.srv.URL+p)
	}
	return out
}

func lookupOrg(t *testing.T, db, ip string) string {
	t.Helper()
	tb, err := asn.Load(db)
	if err != nil {
		t.Fatal(err)
	}
	return tb.Lookup(netip.MustParseAddr(ip)).Org
}

func TestUpdateConditional(t *testing.T) {
	for _, etags := range []bool{true, false} {
		t.Run("etags="+strconv.FormatBool(etags), func(t *testing.T) {
			d := newDataServer(t, map[string][]byte{"/asn-ipv4.csv": []byte(csvV4), "/asn-ipv6.csv": []byte(csvV6)})
			d.etags = etags
			db := filepath.Join(t.TempDir(), "asn.db")
			u := &asn.Updater{DBPath: db, URLs: d.urls("/asn-ipv4.csv", "/asn-ipv6.csv")}
			res, err := u.Update(context.Background())
			if err != nil || !res.Changed || !res.Downloads[0].Fresh || !res.Downloads[1].Fresh {
				t.Fatalf("first update: %+v, %v", res, err)
			}
			if lookupOrg(t, db, "2001:4860::1") != "Google LLC" || res.Meta.Sources[0].Name != d.srv.URL+"/asn-ipv4.csv" {
				t.Fatalf("first update imported %+v", res.Meta)
			}
			// Nothing changed: the server answers 304 and the database stays.
			before, _ := os.ReadFile(db)
			res, err = u.Update(context.Background())
			if err != nil || res.Changed || res.Downloads[0].Fresh {
				t.Fatalf("second update: %+v, %v", res, err)
			}
			h := d.last()
			if etags && h.Get("If-None-Match") == "" || h.Get("If-Modified-Since") == "" {
				t.Errorf("second request lacks validators: %v", h)
			}
			if after, _ := os.ReadFile(db); !bytes.Equal(before, after) {
				t.Error("database rewritten although nothing changed")
			}
			// One file changes: it is downloaded, the other comes from the
			// kept copy, and the new database holds both.
			d.set("/asn-ipv4.csv", []byte(strings.Replace(csvV4, "Google LLC", "Google LLC (new)", 1)))
			res, err = u.Update(context.Background())
			if err != nil || !res.Changed || !res.Downloads[0].Fresh || res.Downloads[1].Fresh {
				t.Fatalf("third update: %+v, %v", res, err)
			}
			if o := lookupOrg(t, db, "8.8.8.8"); o != "Google LLC (new)" {
				t.Errorf("8.8.8.8 org %q after the update", o)
			}
			if o := lookupOrg(t, db, "2001:4860::1"); o != "Google LLC" {
				t.Errorf("2001:4860::1 org %q from the kept copy", o)
			}
		})
	}
}

// TestUpdateFailures checks that each failure is a clear error and leaves
// the database and the kept downloads as they were.
func TestUpdateFailures(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/asn-ipv4.csv"
	ln.Close()
	big := []byte(strings.Repeat(csvV4[18:], 2000))
	for _, tc := range []struct {
		name  string
		setup func(d *dataServer) []string
		want  string
	}{
		{"unreachable", func(d *dataServer) []string { return []string{closed} }, "connection refused"},
		{"not found", func(d *dataServer) []string { return d.urls("/nope.csv") }, "404 Not Found"},
		{"cut halfway", func(d *dataServer) []string {
			d.set("/big.csv", big)
			d.cut["/big.csv"] = true
			return d.urls("/big.csv")
		}, "unexpected EOF"},
		{"bad data", func(d *dataServer) []string {
			d.set("/asn-ipv4.csv", []byte("<html>maintenance, back soon, sorry</html>\n"))
			return d.urls("/asn-ipv4.csv")
		}, "not an IP address"},
		{"not http", func(d *dataServer) []string { return []string{"file:///etc/passwd"} }, "want an http or https URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDataServer(t, map[string][]byte{"/asn-ipv4.csv": []byte(csvV4)})
			db := filepath.Join(t.TempDir(), "asn.db")
			if _, err := (&asn.Updater{DBPath: db, URLs: d.urls("/asn-ipv4.csv")}).Update(context.Background()); err != nil {
				t.Fatal(err)
			}
			dlDir := filepath.Join(filepath.Dir(db), asn.DownloadDir)
			before, _ := os.ReadFile(db)
			state, _ := os.ReadFile(filepath.Join(dlDir, "state.json"))
			ents, _ := os.ReadDir(dlDir)
			_, err := (&asn.Updater{DBPath: db, URLs: tc.setup(d)}).Update(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "database was not changed") {
				t.Fatalf("error %v, want one mentioning %q and that the database was not changed", err, tc.want)
			}
			if after, _ := os.ReadFile(db); !bytes.Equal(before, after) {
				t.Error("database changed by a failed update")
			}
			if s, _ := os.ReadFile(filepath.Join(dlDir, "state.json")); !bytes.Equal(s, state) {
				t.Error("download state changed by a failed update")
			}
			if e, _ := os.ReadDir(dlDir); len(e) != len(ents) {
				t.Errorf("download directory holds %d entries, had %d: a partial file was left", len(e), len(ents))
			}
			if o := lookupOrg(t, db, "8.8.8.8"); o != "Google LLC" {
				t.Errorf("old database answers %q", o)
			}
		})
	}
}
