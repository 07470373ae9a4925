package asn

import (
	"archive/tar"
	"bufio"
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
// gzip bomb is an error rather than an exhausted machine. Text is parsed as
// it streams in, so this bounds time, not memory.
const maxInput = 1 << 30

// maxMMDB bounds an MMDB file read from inside a compressed file or a
// package: the format needs the whole file in memory, and this is where a
// stream that is not text is held until it proves to be one.
const maxMMDB = 128 << 20

// sink receives datasets as they are parsed: source starts one, row adds a
// row to the last one started.
type sink interface {
	source(name string, f Format, attribution string)
	row(r Range) error
}

// collector is a sink that keeps everything, for ReadFile and ReadData.
type collector struct{ srcs []Source }

func (c *collector) source(name string, f Format, attribution string) {
	c.srcs = append(c.srcs, Source{Name: name, Format: f, Attribution: attribution})
}

func (c *collector) row(r Range) error {
	s := &c.srcs[len(c.srcs)-1]
	s.Ranges = append(s.Ranges, r)
	return nil
}

// ReadFile reads one dataset file: MMDB, iptoasn TSV or ip-location-db
// CSV, any of them gzipped, or a .tgz package (such as the npm package
// @ip-location-db/asn) whose dataset members are read in turn. The format
// is detected from the content; name is used in messages and the metadata.
// It keeps every row in memory; Import streams instead.
func ReadFile(file, name string) ([]Source, error) {
	c := &collector{}
	if err := readFile(file, name, c); err != nil {
		return nil, err
	}
	return c.srcs, nil
}

// ReadData is ReadFile on bytes already in memory.
func ReadData(data []byte, name string) ([]Source, error) {
	c := &collector{}
	if err := readStream(bytes.NewReader(data), name, 0, c, int64(len(data))); err != nil {
		return nil, err
	}
	return c.srcs, nil
}

func readFile(file, name string, s sink) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("read dataset: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("read dataset: %w", err)
	}
	if info.Size() > maxInput {
		return &PositionError{Name: name, Err: fmt.Errorf("larger than %d bytes", maxInput)}
	}
	// A plain MMDB file may be as large as the file limit; one inside a
	// compressed file is held to maxMMDB.
	return readStream(&capReader{r: f, n: maxInput}, name, 0, s, maxInput)
}

// capReader fails once more than n bytes come from r.
type capReader struct {
	r    io.Reader
	n    int64
	what string // "" for a file, "decompressed" for a stream
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		var one [1]byte
		if n, _ := c.r.Read(one[:]); n > 0 {
			return 0, &limitError{limit: maxInput, what: c.what}
		}
		return c.r.Read(p[:0]) // EOF or the stream's own error
	}
	if int64(len(p)) > c.n {
		p = p[:c.n]
	}
	n, err := c.r.Read(p)
	c.n -= int64(n)
	return n, err
}

// limitError is the error of a stream longer than the input limit.
type limitError struct {
	limit int64
	what  string
}

func (e *limitError) Error() string {
	if e.what != "" {
		return fmt.Sprintf("%s data larger than %d bytes (a gzip bomb, or not a dataset)", e.what, e.limit)
	}
	return fmt.Sprintf("larger than %d bytes", e.limit)
}

// readStream detects the format of r and parses it into s. mmdbMax bounds
// the bytes held in memory for an MMDB file.
func readStream(r io.Reader, name string, depth int, s sink, mmdbMax int64) error {
	if depth > 2 {
		return &PositionError{Name: name, Err: errors.New("archives nested too deep")}
	}
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(4096)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return &PositionError{Name: name, Err: err}
	}
	switch {
	case len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return &PositionError{Name: name, Err: fmt.Errorf("gzip: %w", err)}
		}
		return gzipError(name, readStream(&capReader{r: zr, n: maxInput, what: "decompressed"}, name, depth+1, s, maxMMDB))
	case isTar(head):
		return readTar(br, name, depth, s)
	}
	format, terr := detectText(head, name)
	if terr != nil {
		if !isBinary(head) || allZero(head) {
			return terr
		}
		// Not text: it may be an MMDB file, recognised by its end.
		data, err := io.ReadAll(io.LimitReader(br, mmdbMax+1))
		if err != nil {
			return &PositionError{Name: name, Err: err}
		}
		if int64(len(data)) > mmdbMax {
			return &PositionError{Name: name, Err: fmt.Errorf("binary data larger than %d bytes, and neither text nor an MMDB file of that size", mmdbMax)}
		}
		if !isMMDB(data) {
			return terr
		}
		ranges, attr, err := ParseMMDB(data, name)
		if err != nil {
			return err
		}
		s.source(name, FormatMMDB, attr)
		for _, r := range ranges {
			if err := s.row(r); err != nil {
				return err
			}
		}
		return nil
	}
	if format == FormatTSV {
		s.source(name, format, AttributionIPtoASN)
		return parseTSV(br, name, s.row)
	}
	s.source(name, format, AttributionIPLocationDB)
	return parseCSV(br, name, s.row)
}

// gzipError words the errors of a gzip stream cut short or corrupt.
func gzipError(name string, err error) error {
	if err == nil {
		return nil
	}
	var le *limitError
	if errors.As(err, &le) {
		return &PositionError{Name: name, Err: le}
	}
	if errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF) ||
		strings.Contains(err.Error(), "flate") {
		return &PositionError{Name: name, Err: fmt.Errorf("gzip (truncated or corrupt?): %w", err)}
	}
	return err
}

// isBinary reports whether head, the first 4 KiB or less of a stream,
// looks like binary data rather than text. A full 4 KiB may end inside a
// character, so up to three bytes at its end are not judged.
func isBinary(head []byte) bool {
	if bytes.IndexByte(head, 0) >= 0 {
		return true
	}
	if len(head) == 4096 {
		for i := 0; i < 3 && !utf8.Valid(head); i++ {
			head = head[:len(head)-1]
		}
	}
	return !utf8.Valid(head)
}

func allZero(head []byte) bool {
	return len(head) > 0 && len(bytes.Trim(head, "\x00")) == 0
}

// detectText tells the two text formats apart by their first data line.
func detectText(head []byte, name string) (Format, error) {
	unknown := func(why string) error {
		hint := ""
		if strings.HasSuffix(strings.ToLower(strings.TrimSuffix(name, ".gz")), ".mmdb") {
			hint = " (an .mmdb file without its metadata: truncated?)"
		}
		return &PositionError{Name: name, Err: fmt.Errorf("unrecognised format: %s%s; want MMDB, "+
			"iptoasn TSV or ip-location-db CSV, optionally gzipped, or a .tgz package", why, hint)}
	}
	if len(head) == 0 {
		return "", unknown("empty file")
	}
	head = head[:min(len(head), 4096)]
	if isBinary(head) {
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
func readTar(r io.Reader, name string, depth int, s sink) error {
	tr := tar.NewReader(r)
	found := false
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return &PositionError{Name: name, Err: fmt.Errorf("tar (truncated or corrupt?): %w", err)}
		}
		if h.Typeflag != tar.TypeReg || !isDatasetName(h.Name) {
			continue
		}
		found = true
		member := name + ":" + h.Name
		if err := readStream(&capReader{r: tr, n: maxInput}, member, depth+1, s, maxMMDB); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return &PositionError{Name: member, Err: fmt.Errorf("tar (truncated?): %w", err)}
			}
			return err
		}
	}
	if !found {
		return &PositionError{Name: name, Err: errors.New("package holds no dataset (.csv, .tsv or .mmdb) member")}
	}
	return nil
}

func isDatasetName(p string) bool {
	base := strings.ToLower(path.Base(p))
	base = strings.TrimSuffix(base, ".gz")
	if strings.HasSuffix(base, "-num.csv") {
		return false
	}
	return strings.HasSuffix(base, ".csv") || strings.HasSuffix(base, ".tsv") || strings.HasSuffix(base, ".mmdb")
}
