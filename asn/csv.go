package asn

import (
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
// text, RFC 4180 quoting within a line, one family or both). A header line
// is skipped; lines starting with '#' are comments. Every error names the
// line.
func ParseCSV(r io.Reader, name string) ([]Range, error) {
	var out []Range
	err := parseCSV(r, name, func(rg Range) error { out = append(out, rg); return nil })
	return out, err
}

// parseCSV is ParseCSV handing each row to emit as it is read, so memory
// does not grow with the input.
func parseCSV(r io.Reader, name string, emit func(Range) error) error {
	lr := newLineReader(r)
	var fields []string
	first := true
	for {
		b, err := lr.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return &PositionError{Name: name, Line: lr.line, Err: err}
		}
		if len(b) == 0 || b[0] == '#' {
			continue
		}
		fields, err = splitCSV(fields[:0], b)
		if err != nil {
			return &PositionError{Name: name, Line: lr.line, Err: fmt.Errorf("CSV syntax: %w", err)}
		}
		if first {
			first = false
			if isHeader(fields) {
				continue
			}
		}
		if len(fields) != 3 && len(fields) != 4 {
			return &PositionError{Name: name, Line: lr.line,
				Err: fmt.Errorf("%d fields, want start,end,asn[,org]", len(fields))}
		}
		org := ""
		if len(fields) == 4 {
			org = fields[3]
		}
		rg, err := parseRow(fields[0], fields[1], fields[2], org)
		if err != nil {
			return &PositionError{Name: name, Line: lr.line, Err: err}
		}
		rg.Line = lr.line
		if err := emit(rg); err != nil {
			return err
		}
	}
}

// splitCSV splits one line into RFC 4180 fields: a field in double quotes
// may hold commas and doubled quotes; a quote inside an unquoted field is
// an error, as is text after a closing quote. A quoted field cannot span
// lines (no dataset needs it, and it would make a line unbounded).
func splitCSV(out []string, b []byte) ([]string, error) {
	s := string(b)
	for {
		if !strings.HasPrefix(s, `"`) {
			i := strings.IndexByte(s, ',')
			f := s
			if i >= 0 {
				f = s[:i]
			}
			if strings.IndexByte(f, '"') >= 0 {
				return nil, errors.New(`bare " in a field without quotes`)
			}
			out = append(out, f)
			if i < 0 {
				return out, nil
			}
			s = s[i+1:]
			continue
		}
		var sb strings.Builder
		s = s[1:]
		for {
			i := strings.IndexByte(s, '"')
			if i < 0 {
				return nil, errors.New(`quoted field without its closing " (a field cannot span lines)`)
			}
			sb.WriteString(s[:i])
			s = s[i+1:]
			if strings.HasPrefix(s, `"`) {
				sb.WriteByte('"')
				s = s[1:]
				continue
			}
			break
		}
		out = append(out, sb.String())
		switch {
		case s == "":
			return out, nil
		case s[0] == ',':
			s = s[1:]
		default:
			return nil, errors.New(`text after the closing " of a quoted field`)
		}
	}
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
