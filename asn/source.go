package asn

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Format names an input format.
type Format string

// The formats Import reads.
const (
	FormatMMDB Format = "mmdb"               // MaxMind DB: GeoLite2-ASN, DB-IP ASN Lite, IPinfo ASN
	FormatTSV  Format = "iptoasn-tsv"        // iptoasn.com ip2asn-combined.tsv
	FormatCSV  Format = "ip-location-db-csv" // ip-location-db start,end,asn,org
)

// Range is one row of a dataset: an inclusive address range and its AS.
type Range struct {
	First, Last netip.Addr
	ASN         uint32
	Org         string
	Line        int // 1-based line of a text file, 0 for MMDB
}

// Source is one parsed dataset file.
type Source struct {
	Name        string // file, URL or package member the ranges came from
	Format      Format
	Attribution string // what must be shown next to data from this source
	Ranges      []Range
}

// SourceMeta describes one source of a built database.
type SourceMeta struct {
	Name        string `json:"name"`
	Format      Format `json:"format"`
	Attribution string `json:"attribution,omitempty"`
	Ranges      int    `json:"ranges"`
}

// Meta describes a built database: where its data came from and when.
type Meta struct {
	ImportedAt time.Time    `json:"imported_at"`
	Sources    []SourceMeta `json:"sources"`
	V4Ranges   int          `json:"v4_ranges"`
	V6Ranges   int          `json:"v6_ranges"`
	Overlaps   int          `json:"overlaps,omitempty"` // overlapping input rows resolved narrowest-first
	// OverlapList names the first overlaps resolved (at most 20).
	OverlapList []Overlap `json:"overlap_list,omitempty"`
}

// Overlap names two overlapping rows: "file:line (start-end ASn)" each; B
// overlaps A, the wider range reaching furthest before it.
type Overlap struct {
	A string `json:"a"`
	B string `json:"b"`
}

// Attribution joins the distinct attributions of the sources, the text to
// show wherever data from this database is shown.
func (m Meta) Attribution() string {
	var out []string
	seen := map[string]bool{}
	for _, s := range m.Sources {
		if s.Attribution != "" && !seen[s.Attribution] {
			seen[s.Attribution] = true
			out = append(out, s.Attribution)
		}
	}
	return strings.Join(out, "; ")
}

// Attributions of the datasets the importer recognises.
const (
	AttributionIPLocationDB = "IP to ASN data from ip-location-db (https://github.com/sapics/ip-location-db), " +
		"built from RouteViews (https://www.routeviews.org), NRO (https://www.nro.net) and " +
		"IP Geolocation by DB-IP (https://db-ip.com), licensed CC BY 4.0"
	AttributionIPtoASN = "IP to ASN data from iptoasn.com (https://iptoasn.com)"
	AttributionGeoLite = "This product includes GeoLite2 data created by MaxMind, available from https://www.maxmind.com"
	AttributionDBIP    = "IP Geolocation by DB-IP (https://db-ip.com), licensed CC BY 4.0"
	AttributionIPinfo  = "IP address data powered by IPinfo (https://ipinfo.io), licensed CC BY-SA 4.0"
)

// PositionError locates a problem in an input file.
type PositionError struct {
	Name string
	Line int // 0 when the format has no lines
	Err  error
}

func (e *PositionError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.Name, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Name, e.Err)
}

func (e *PositionError) Unwrap() error { return e.Err }
