package asn

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxOrgLen bounds an organisation name; longer fields mean the input is
// not what it claims to be.
const maxOrgLen = 1024

// ParseCSV reads ip-location-db CSV ("start,end,asn,org", addresses as
// text, RFC 4180 quoting, one family or both). A header line is skipped;
// lines starting with '#' are comments. Every error names the line.
func ParseCSV(r io.Reader, name string) ([]Range, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.Comment = '#'
	cr.ReuseRecord = true
	var out []Range
	for first := true; ; first = false {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, &PositionError{Name: name, Line: pe.Line, Err: fmt.Errorf("CSV syntax: %w", pe.Err)}
			}
			return nil, &PositionError{Name: name, Err: err}
		}
		line, _ := cr.FieldPos(0)
		if first && isHeader(rec) {
			continue
		}
		if len(rec) != 3 && len(rec) != 4 {
			return nil, &PositionError{Name: name, Line: line,
				Err: fmt.Errorf("%d fields, want start,end,asn[,org]", len(rec))}
		}
		org := ""
		if len(rec) == 4 {
			org = rec[3]
		}
		rg, err := parseRow(rec[0], rec[1], rec[2], org)
		if err != nil {
			return nil, &PositionError{Name: name, Line: line, Err: err}
		}
		rg.Line = line
		out = append(out, rg)
	}
	return out, nil
}

// isHeader reports whether a first line names columns rather than holding
// data: no field parses as an address and every field is a plain word.
func isHeader(rec []string) bool {
	if len(rec) < 3 {
		return false
	}
	for _, f := range rec {
		if _, err := netip.ParseAddr(strings.TrimSpace(f)); err == nil || f == "" {
			return false
		}
		for _, c := range f {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == ' ' || c == '-') {
				return false
			}
		}
	}
	return true
}

// parseRow parses the fields shared by the text formats.
func parseRow(start, end, asn, org string) (Range, error) {
	first, err := parseAddr(start)
	if err != nil {
		return Range{}, fmt.Errorf("range start: %w", err)
	}
	last, err := parseAddr(end)
	if err != nil {
		return Range{}, fmt.Errorf("range end: %w", err)
	}
	n, err := parseASN(asn)
	if err != nil {
		return Range{}, err
	}
	org = strings.TrimSpace(org)
	if len(org) > maxOrgLen {
		return Range{}, fmt.Errorf("organisation name of %d bytes, more than %d", len(org), maxOrgLen)
	}
	if !utf8.ValidString(org) {
		org = strings.ToValidUTF8(org, "\uFFFD")
	}
	return Range{First: first, Last: last, ASN: n, Org: org}, nil
}

func parseAddr(s string) (netip.Addr, error) {
	s = strings.TrimSpace(s)
	if s != "" && strings.Trim(s, "0123456789") == "" {
		return netip.Addr{}, fmt.Errorf("%q is a numeric address; use the file with addresses as text", s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", truncate(s))
	}
	if a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%q: a zone has no place in a dataset", truncate(s))
	}
	return a.Unmap(), nil
}

// parseASN accepts "15169" and "AS15169".
func parseASN(s string) (uint32, error) {
	t := strings.TrimSpace(s)
	if len(t) > 2 && strings.EqualFold(t[:2], "AS") {
		t = t[2:]
	}
	n, err := strconv.ParseUint(t, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("AS number %q is not a number from 0 to 4294967295", truncate(s))
	}
	return uint32(n), nil
}

// truncate shortens s for an error message.
func truncate(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}
