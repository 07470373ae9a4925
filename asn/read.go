package asn

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"unicode/utf8"
)

// maxInput bounds a file, a package member and a decompressed stream, so a
// gzip bomb is an error rather than an exhausted machine.
const maxInput = 1 << 30

// ReadFile reads one dataset file: MMDB, iptoasn TSV or ip-location-db
// CSV, any of them gzipped, or a .tgz package (such as the npm package
// @ip-location-db/asn) whose dataset members are read in turn. The format
// is detected from the content; name is used in messages and the metadata.
func ReadFile(file, name string) ([]Source, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("read dataset: %w", err)
	}
	defer f.Close()
	data, err := readAll(f, name)
	if err != nil {
		return nil, err
	}
	return ReadData(data, name)
}

func readAll(r io.Reader, name string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxInput+1))
	if err != nil {
		return nil, &PositionError{Name: name, Err: err}
	}
	if len(data) > maxInput {
		return nil, &PositionError{Name: name, Err: fmt.Errorf("larger than %d bytes", maxInput)}
	}
	return data, nil
}

// ReadData is ReadFile on bytes already in memory.
func ReadData(data []byte, name string) ([]Source, error) {
	return readData(data, name, 0)
}

func readData(data []byte, name string, depth int) ([]Source, error) {
	if depth > 2 {
		return nil, &PositionError{Name: name, Err: errors.New("archives nested too deep")}
	}
	switch {
	case len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b:
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, &PositionError{Name: name, Err: fmt.Errorf("gzip: %w", err)}
		}
		inner, err := readAll(zr, name)
		if err != nil {
			return nil, &PositionError{Name: name, Err: fmt.Errorf("gzip (truncated or corrupt?): %w", errors.Unwrap(err))}
		}
		return readData(inner, name, depth+1)
	case isTar(data):
		return readTar(data, name, depth)
	case isMMDB(data):
		ranges, attr, err := ParseMMDB(data, name)
		if err != nil {
			return nil, err
		}
		return []Source{{Name: name, Format: FormatMMDB, Attribution: attr, Ranges: ranges}}, nil
	}
	format, err := detectText(data, name)
	if err != nil {
		return nil, err
	}
	src := Source{Name: name, Format: format}
	if format == FormatTSV {
		src.Attribution = AttributionIPtoASN
		src.Ranges, err = ParseTSV(bytes.NewReader(data), name)
	} else {
		src.Attribution = AttributionIPLocationDB
		src.Ranges, err = ParseCSV(bytes.NewReader(data), name)
	}
	if err != nil {
		return nil, err
	}
	return []Source{src}, nil
}

// detectText tells the two text formats apart by their first data line.
func detectText(data []byte, name string) (Format, error) {
	unknown := func(why string) error {
		hint := ""
		if strings.HasSuffix(strings.ToLower(strings.TrimSuffix(name, ".gz")), ".mmdb") {
			hint = " (an .mmdb file without its metadata: truncated?)"
		}
		return &PositionError{Name: name, Err: fmt.Errorf("unrecognised format: %s%s; want MMDB, "+
			"iptoasn TSV or ip-location-db CSV, optionally gzipped, or a .tgz package", why, hint)}
	}
	if len(data) == 0 {
		return "", unknown("empty file")
	}
	head := data[:min(len(data), 4096)]
	if bytes.IndexByte(head, 0) >= 0 || !utf8.Valid(head[:max(0, len(head)-3)]) {
		return "", unknown("binary content")
	}
	for _, l := range strings.Split(string(head), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l[0] == '#' {
			continue
		}
		switch {
		case strings.Count(l, "\t") >= 2:
			return FormatTSV, nil
		case strings.Count(l, ",") >= 2:
			return FormatCSV, nil
		}
		return "", unknown(fmt.Sprintf("first line %q is neither tab- nor comma-separated", truncate(l)))
	}
	return "", unknown("no data line in the first 4 KiB")
}

func isTar(data []byte) bool {
	return len(data) >= 263 && bytes.Equal(data[257:262], []byte("ustar"))
}

// readTar reads the dataset members of a package. Numeric variants
// (-num.csv) duplicate the text ones and are skipped; licence, readme and
// package.json members are not datasets.
func readTar(data []byte, name string, depth int) ([]Source, error) {
	tr := tar.NewReader(bytes.NewReader(data))
	var out []Source
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, &PositionError{Name: name, Err: fmt.Errorf("tar (truncated or corrupt?): %w", err)}
		}
		if h.Typeflag != tar.TypeReg || !isDatasetName(h.Name) {
			continue
		}
		member := name + ":" + h.Name
		b, err := readAll(tr, member)
		if err != nil {
			return nil, &PositionError{Name: member, Err: fmt.Errorf("tar (truncated?): %w", errors.Unwrap(err))}
		}
		srcs, err := readData(b, member, depth+1)
		if err != nil {
			return nil, err
		}
		out = append(out, srcs...)
	}
	if len(out) == 0 {
		return nil, &PositionError{Name: name, Err: errors.New("package holds no dataset (.csv, .tsv or .mmdb) member")}
	}
	return out, nil
}

func isDatasetName(p string) bool {
	base := strings.ToLower(path.Base(p))
	base = strings.TrimSuffix(base, ".gz")
	if strings.HasSuffix(base, "-num.csv") {
		return false
	}
	return strings.HasSuffix(base, ".csv") || strings.HasSuffix(base, ".tsv") || strings.HasSuffix(base, ".mmdb")
}
