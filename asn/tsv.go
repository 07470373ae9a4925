package asn

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxLine bounds a line of a text dataset.
const maxLine = 64 << 10

// ParseTSV reads the iptoasn.com format (ip2asn-combined.tsv, -v4.tsv,
// -v6.tsv): "range_start, range_end, AS_number, country_code,
// AS_description" separated by tabs. Rows of AS 0 ("Not routed") are kept
// here and left out when the table is built. Every error names the line.
func ParseTSV(r io.Reader, name string) ([]Range, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	var out []Range
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimRight(sc.Bytes(), "\r")
		if len(bytes.TrimSpace(b)) == 0 || b[0] == '#' {
			continue
		}
		f := strings.Split(string(b), "\t")
		if len(f) != 5 {
			return nil, &PositionError{Name: name, Line: line,
				Err: fmt.Errorf("%d tab-separated fields, want 5 (start, end, AS number, country, description)", len(f))}
		}
		rg, err := parseRow(f[0], f[1], f[2], f[4])
		if err != nil {
			return nil, &PositionError{Name: name, Line: line, Err: err}
		}
		if rg.ASN == 0 {
			rg.Org = "" // "Not routed"
		}
		rg.Line = line
		out = append(out, rg)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &PositionError{Name: name, Line: line + 1, Err: fmt.Errorf("line longer than %d bytes", maxLine)}
		}
		return nil, &PositionError{Name: name, Line: line + 1, Err: err}
	}
	return out, nil
}
