package asn

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Input is one file to import and the name it goes by in messages and in
// the metadata (a URL for a download; the path otherwise).
type Input struct {
	Path string
	Name string
}

// ImportOptions control Import.
type ImportOptions struct {
	Strict      bool         // see BuildOptions: overlapping ranges are an error
	Attribution string       // replaces the attribution of every source when set
	Logger      *slog.Logger // nil discards
	Now         func() time.Time
}

// Import reads inputs, builds a table and replaces the database at dbPath
// atomically: the new file is written beside it, synced and renamed over
// it, so a failed or interrupted import leaves the previous database in
// place and usable. Rows are parsed as they stream in and overlaps are
// resolved as they appear, so memory follows the size of the resulting
// table, not of the input. Imports into one directory run one at a time;
// temporary files that a killed import left there are removed first. It
// returns the metadata of the new database.
func Import(dbPath string, inputs []Input, opts ImportOptions) (Meta, error) {
	unlock, err := lockDir(filepath.Dir(dbPath))
	if err != nil {
		return Meta{}, fmt.Errorf("import: %w", err)
	}
	defer unlock()
	return importLocked(dbPath, inputs, opts)
}

// importLocked is Import with the directory lock held.
func importLocked(dbPath string, inputs []Input, opts ImportOptions) (Meta, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(inputs) == 0 {
		return Meta{}, errors.New("import: no input files")
	}
	removeTemps(filepath.Dir(dbPath), filepath.Base(dbPath)+".tmp-", lockedTempAge)
	b := newBuilder(BuildOptions{Strict: opts.Strict, Logger: log})
	for _, in := range inputs {
		name := in.Name
		if name == "" {
			name = in.Path
		}
		start := time.Now()
		n := len(b.meta.Sources)
		if err := readFile(in.Path, name, b); err != nil {
			return Meta{}, fmt.Errorf("import: %w", err)
		}
		for _, x := range b.meta.Sources[n:] {
			log.Debug("read dataset", "name", x.Name, "format", x.Format, "rows", x.Ranges, "took", time.Since(start))
		}
	}
	if opts.Attribution != "" {
		for i := range b.meta.Sources {
			b.meta.Sources[i].Attribution = opts.Attribution
		}
	}
	t, err := b.finish()
	if err != nil {
		return Meta{}, fmt.Errorf("import: %w", err)
	}
	if t.meta.V4Ranges+t.meta.V6Ranges == 0 {
		return Meta{}, errors.New("import: the input holds no range with an AS number")
	}
	if t.meta.Overlaps > 0 {
		log.Debug("overlapping ranges resolved, the narrower winning", "overlaps", t.meta.Overlaps)
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	t.meta.ImportedAt = now().UTC()
	enc, err := t.Encode()
	if err != nil {
		return Meta{}, fmt.Errorf("import: %w", err)
	}
	if err := WriteAtomic(dbPath, enc); err != nil {
		return Meta{}, fmt.Errorf("import: %w", err)
	}
	return t.meta, nil
}

// WriteAtomic replaces path with data: write a temporary file in the same
// directory, sync it, rename it over path and sync the directory. Readers
// see the old file or the new one, never a mix. Temporary files an
// interrupted run left behind for more than an hour are removed (Import
// removes them all, holding the directory lock).
func WriteAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	removeTemps(dir, filepath.Base(path)+".tmp-", time.Hour)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temporary file: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		d.Sync() // best effort: the rename is durable on most file systems without it
		d.Close()
	}
	return nil
}

// removeTemps removes the files in dir whose names start with prefix and
// that are older than age: temporary files of a run that was killed. With
// the directory lock held no other run is writing any, and age is 0.
func removeTemps(dir, prefix string, age time.Duration) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) >= age {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}
