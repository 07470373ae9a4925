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
	var out []Range
	err := parseTSV(r, name, func(rg Range) error { out = append(out, rg); return nil })
	return out, err
}

// parseTSV is ParseTSV handing each row to emit as it is read.
func parseTSV(r io.Reader, name string, emit func(Range) error) error {
	lr := newLineReader(r)
	for {
		b, err := lr.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return &PositionError{Name: name, Line: lr.line, Err: err}
		}
		if len(bytes.TrimSpace(b)) == 0 || b[0] == '#' {
			continue
		}
		f := strings.Split(string(b), "\t")
		if len(f) != 5 {
			return &PositionError{Name: name, Line: lr.line,
				Err: fmt.Errorf("%d tab-separated fields, want 5 (start, end, AS number, country, description)", len(f))}
		}
		rg, err := parseRow(f[0], f[1], f[2], f[4])
		if err != nil {
			return &PositionError{Name: name, Line: lr.line, Err: err}
		}
		if rg.ASN == 0 {
			rg.Org = "" // "Not routed"
		}
		rg.Line = lr.line
		if err := emit(rg); err != nil {
			return err
		}
	}
}

// lineReader reads lines of at most maxLine bytes, without their "\n" or
// "\r\n", counting them.
type lineReader struct {
	br   *bufio.Reader
	line int
}

func newLineReader(r io.Reader) *lineReader {
	br, ok := r.(*bufio.Reader)
	if !ok || br.Size() < maxLine {
		br = bufio.NewReaderSize(r, maxLine)
	}
	return &lineReader{br: br}
}

// next returns the next line; the slice is valid until the next call.
func (l *lineReader) next() ([]byte, error) {
	b, err := l.br.ReadSlice('\n')
	l.line++
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return nil, fmt.Errorf("line longer than %d bytes", maxLine)
	case errors.Is(err, io.EOF):
		if len(b) == 0 {
			l.line--
			return nil, io.EOF
		}
	case err != nil:
		return nil, err
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r")), nil
}
