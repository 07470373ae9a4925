package asn

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/oschwald/maxminddb-golang/v2"
)

// mmdbMarker starts the metadata section at the end of every MMDB file.
var mmdbMarker = []byte("\xab\xcd\xefMaxMind.com")

// mmdbRecord holds the fields the known ASN databases use: GeoLite2-ASN and
// DB-IP ASN Lite (autonomous_system_*), IPinfo ASN (asn "AS15169", name)
// and IPinfo Lite (asn, as_name).
type mmdbRecord struct {
	Number uint32 `maxminddb:"autonomous_system_number"`
	Org    string `maxminddb:"autonomous_system_organization"`
	ASN    any    `maxminddb:"asn"`
	Name   string `maxminddb:"name"`
	ASName string `maxminddb:"as_name"`
}

// isMMDB reports whether data carries the MMDB metadata marker in its
// last 128 KiB, where the format puts it.
func isMMDB(data []byte) bool {
	tail := data
	if len(tail) > 128<<10 {
		tail = tail[len(tail)-128<<10:]
	}
	return bytes.LastIndex(tail, mmdbMarker) >= 0
}

// ParseMMDB reads an ASN database in MaxMind DB format. It verifies the
// whole file first, so a truncated or corrupt file is an error rather than
// a partial table, and returns the ranges with the attribution its
// metadata implies.
func ParseMMDB(data []byte, name string) (ranges []Range, attribution string, err error) {
	perr := func(err error) error { return &PositionError{Name: name, Err: err} }
	if !isMMDB(data) {
		return nil, "", perr(fmt.Errorf("not an MMDB file: metadata marker missing (truncated?)"))
	}
	db, err := maxminddb.OpenBytes(data)
	if err != nil {
		return nil, "", perr(fmt.Errorf("open MMDB: %w", err))
	}
	defer db.Close()
	if err := db.Verify(); err != nil {
		return nil, "", perr(fmt.Errorf("corrupt MMDB: %w", err))
	}
	for res := range db.Networks() {
		if err := res.Err(); err != nil {
			return nil, "", perr(fmt.Errorf("walk MMDB: %w", err))
		}
		var rec mmdbRecord
		if err := res.Decode(&rec); err != nil {
			return nil, "", perr(fmt.Errorf("MMDB record for %s: %w", res.Prefix(), err))
		}
		n, org, err := rec.as()
		if err != nil {
			return nil, "", perr(fmt.Errorf("MMDB record for %s: %w", res.Prefix(), err))
		}
		if n == 0 {
			continue
		}
		p := res.Prefix().Masked()
		ranges = append(ranges, Range{First: p.Addr(), Last: lastAddr(p), ASN: n, Org: org})
	}
	return ranges, mmdbAttribution(db.Metadata), nil
}

// as picks the AS number and organisation from whichever fields are set.
func (r mmdbRecord) as() (uint32, string, error) {
	org := firstNonEmpty(r.Org, r.ASName, r.Name)
	if r.Number != 0 {
		return r.Number, org, nil
	}
	switch v := r.ASN.(type) {
	case nil:
		return 0, org, nil
	case string:
		if v == "" {
			return 0, org, nil
		}
		n, err := parseASN(v)
		return n, org, err
	case uint64:
		return uint32(v), org, checkASN(v)
	case uint32:
		return v, org, nil
	case uint16:
		return uint32(v), org, nil
	case int32:
		return uint32(v), org, checkASN(uint64(v))
	default:
		return 0, "", fmt.Errorf("asn field of unexpected type %T", v)
	}
}

func checkASN(v uint64) error {
	if v > 1<<32-1 {
		return fmt.Errorf("AS number %s out of range", strconv.FormatUint(v, 10))
	}
	return nil
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// lastAddr returns the last address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	width := 128
	if p.Addr().Is4() {
		width = 32
	}
	return u128From(p.Addr()).or(lowMask(width - p.Bits())).addr(width == 32)
}

// mmdbAttribution names the data source from the database type, for the
// vendors whose ASN databases people use.
func mmdbAttribution(m maxminddb.Metadata) string {
	t := strings.ToLower(m.DatabaseType)
	desc := strings.ToLower(m.Description["en"])
	switch {
	case strings.Contains(t, "dbip") || strings.Contains(t, "db-ip") || strings.Contains(desc, "db-ip"):
		return AttributionDBIP
	case strings.Contains(t, "ipinfo") || strings.Contains(desc, "ipinfo"):
		return AttributionIPinfo
	case strings.Contains(t, "geolite"):
		return AttributionGeoLite
	case strings.Contains(t, "ip-location-db") || strings.Contains(desc, "ip-location-db"):
		return AttributionIPLocationDB
	}
	if d := m.Description["en"]; d != "" {
		return fmt.Sprintf("%s (%s)", m.DatabaseType, d)
	}
	return m.DatabaseType
}
