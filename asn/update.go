package asn

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"time"
)

// DefaultURLs are the datasets update fetches by default: the IPv4 and
// IPv6 CSV files of the npm package @ip-location-db/asn (CC BY 4.0, from
// RouteViews, NRO and DB-IP data) as jsDelivr serves them, the addresses
// the package's README documents.
var DefaultURLs = []string{
	"https://cdn.jsdelivr.net/npm/@ip-location-db/asn/asn-ipv4.csv",
	"https://cdn.jsdelivr.net/npm/@ip-location-db/asn/asn-ipv6.csv",
}

// DownloadDir is the directory beside the database that keeps the last
// download of each URL and its validators (ETag, Last-Modified).
const DownloadDir = "asn-downloads"

// Updater downloads datasets with conditional requests and imports them.
type Updater struct {
	DBPath string
	URLs   []string     // DefaultURLs when empty
	Client *http.Client // nil: a client with a 10-minute timeout
	Import ImportOptions
	Logger *slog.Logger // nil discards
}

// Download reports what happened to one URL.
type Download struct {
	URL   string `json:"url"`
	Fresh bool   `json:"fresh"` // false: 304 Not Modified, the kept copy was used
	Bytes int64  `json:"bytes"`
}

// UpdateResult is what Update did.
type UpdateResult struct {
	Changed   bool       `json:"changed"` // a new database was imported
	Downloads []Download `json:"downloads"`
	Meta      *Meta      `json:"meta,omitempty"`
}

// validators are what a server sent with the last full download of a URL.
type validators struct {
	File         string `json:"file"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
}

// Update fetches every URL, asking only for what changed since the last
// run, and imports the set atomically when anything changed (or when there
// is no database yet). Any failure (unreachable server, bad status, a
// download cut short, data that does not import) leaves the database and
// the kept downloads as they were.
func (u *Updater) Update(ctx context.Context) (UpdateResult, error) {
	log := u.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	urls := u.URLs
	if len(urls) == 0 {
		urls = DefaultURLs
	}
	client := u.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Minute}
	}
	dir := filepath.Join(filepath.Dir(u.DBPath), DownloadDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return UpdateResult{}, fmt.Errorf("update: %w", err)
	}
	unlock, err := lockDir(filepath.Dir(u.DBPath))
	if err != nil {
		return UpdateResult{}, fmt.Errorf("update: %w", err)
	}
	defer unlock()
	statePath := filepath.Join(dir, "state.json")
	state := map[string]validators{}
	if b, err := os.ReadFile(statePath); err == nil {
		if err := json.Unmarshal(b, &state); err != nil {
			log.Warn("ignoring unreadable download state; downloading everything", "path", statePath, "err", err)
			state = map[string]validators{}
		}
	}
	_, dbErr := os.Stat(u.DBPath)
	haveDB := dbErr == nil

	var res UpdateResult
	var inputs []Input
	var temps []string // fresh downloads, renamed into place after a good import
	defer func() {
		for _, t := range temps {
			os.Remove(t)
		}
	}()
	fresh := 0
	for _, raw := range urls {
		v, kept := state[raw]
		keptPath := filepath.Join(dir, v.File)
		if kept {
			if _, err := os.Stat(keptPath); err != nil {
				kept = false
			}
		}
		if !kept {
			v = validators{File: fileFor(raw)}
		}
		removeTemps(dir, v.File+".part-", lockedTempAge) // left by a killed run
		tmp, n, err := fetch(ctx, client, raw, v, kept && haveDB, dir)
		if err != nil {
			return res, fmt.Errorf("update: %w; the database was not changed", err)
		}
		dl := Download{URL: raw, Fresh: tmp != nil}
		if tmp == nil {
			log.Info("not modified", "url", raw)
			inputs = append(inputs, Input{Path: keptPath, Name: raw})
			if info, err := os.Stat(keptPath); err == nil {
				dl.Bytes = info.Size()
			}
		} else {
			fresh++
			log.Info("downloaded", "url", raw, "bytes", n)
			dl.Bytes = n
			temps = append(temps, tmp.path)
			inputs = append(inputs, Input{Path: tmp.path, Name: raw})
			state[raw] = validators{File: v.File, ETag: tmp.etag, LastModified: tmp.lastModified}
		}
		res.Downloads = append(res.Downloads, dl)
	}
	if fresh == 0 && haveDB {
		return res, nil
	}
	meta, err := importLocked(u.DBPath, inputs, u.Import)
	if err != nil {
		return res, fmt.Errorf("update: %w; the database was not changed", err)
	}
	res.Changed, res.Meta = true, &meta
	// Keep the new downloads for the next conditional request. A failure
	// here costs a full download next time, nothing more.
	for i, in := range inputs {
		if !res.Downloads[i].Fresh {
			continue
		}
		dst := filepath.Join(dir, state[urls[i]].File)
		if err := os.Rename(in.Path, dst); err != nil {
			log.Warn("keep download", "err", err)
			delete(state, urls[i])
		}
	}
	if b, err := json.MarshalIndent(state, "", "  "); err == nil {
		if err := WriteAtomic(statePath, b); err != nil {
			log.Warn("save download state", "err", err)
		}
	}
	return res, nil
}

type fetched struct {
	path, etag, lastModified string
}

// fetch GETs raw into a temporary file in dir. With conditional set it
// sends the validators and returns nil on 304 Not Modified.
func fetch(ctx context.Context, c *http.Client, raw string, v validators, conditional bool, dir string) (*fetched, int64, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, 0, fmt.Errorf("URL %q: want an http or https URL", raw)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("GET %s: %w", raw, err)
	}
	req.Header.Set("User-Agent", "mtuscope-asn-update")
	if conditional {
		if v.ETag != "" {
			req.Header.Set("If-None-Match", v.ETag)
		}
		if v.LastModified != "" {
			req.Header.Set("If-Modified-Since", v.LastModified)
		}
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("GET %s: %w", raw, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && conditional:
		return nil, 0, nil
	case resp.StatusCode != http.StatusOK:
		return nil, 0, fmt.Errorf("GET %s: %s", raw, resp.Status)
	}
	f, err := os.CreateTemp(dir, v.File+".part-*")
	if err != nil {
		return nil, 0, fmt.Errorf("GET %s: %w", raw, err)
	}
	n, err := io.Copy(f, io.LimitReader(resp.Body, maxInput+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	switch {
	case err != nil:
		err = fmt.Errorf("GET %s: download cut after %d bytes: %w", raw, n, err)
	case n > maxInput:
		err = fmt.Errorf("GET %s: larger than %d bytes", raw, maxInput)
	case resp.ContentLength >= 0 && n != resp.ContentLength:
		err = fmt.Errorf("GET %s: got %d of %d bytes", raw, n, resp.ContentLength)
	case n == 0:
		err = errors.New("GET " + raw + ": empty response")
	}
	if err != nil {
		os.Remove(f.Name())
		return nil, 0, err
	}
	return &fetched{path: f.Name(), etag: resp.Header.Get("ETag"), lastModified: resp.Header.Get("Last-Modified")}, n, nil
}

// fileFor names the kept copy of a URL: a hash against collisions, and
// the URL's base name, which keeps messages readable.
func fileFor(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	base := "download"
	if u, err := url.Parse(raw); err == nil && path.Base(u.Path) != "/" && path.Base(u.Path) != "." {
		base = path.Base(u.Path)
	}
	return hex.EncodeToString(sum[:6]) + "-" + base
}
