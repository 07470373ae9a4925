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
	AllowOverlaps bool         // see BuildOptions
	Attribution   string       // replaces the attribution of every source when set
	Logger        *slog.Logger // nil discards
	Now           func() time.Time
}

// Import reads inputs, builds a table and replaces the database at dbPath
// atomically: the new file is written beside it, synced and renamed over
// it, so a failed or interrupted import leaves the previous database in
// place and usable. It returns the metadata of the new database.
func Import(dbPath string, inputs []Input, opts ImportOptions) (Meta, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(inputs) == 0 {
		return Meta{}, errors.New("import: no input files")
	}
	var srcs []Source
	for _, in := range inputs {
		name := in.Name
		if name == "" {
			name = in.Path
		}
		start := time.Now()
		s, err := ReadFile(in.Path, name)
		if err != nil {
			return Meta{}, fmt.Errorf("import: %w", err)
		}
		for _, x := range s {
			log.Debug("read dataset", "name", x.Name, "format", x.Format, "rows", len(x.Ranges), "took", time.Since(start))
		}
		srcs = append(srcs, s...)
	}
	if opts.Attribution != "" {
		for i := range srcs {
			srcs[i].Attribution = opts.Attribution
		}
	}
	t, err := Build(srcs, BuildOptions{AllowOverlaps: opts.AllowOverlaps, Logger: log})
	if err != nil {
		return Meta{}, fmt.Errorf("import: %w", err)
	}
	if t.meta.V4Ranges+t.meta.V6Ranges == 0 {
		return Meta{}, errors.New("import: the input holds no range with an AS number")
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	t.meta.ImportedAt = now().UTC()
	b, err := t.Encode()
	if err != nil {
		return Meta{}, fmt.Errorf("import: %w", err)
	}
	if err := WriteAtomic(dbPath, b); err != nil {
		return Meta{}, fmt.Errorf("import: %w", err)
	}
	return t.meta, nil
}

// WriteAtomic replaces path with data: write a temporary file in the same
// directory, sync it, rename it over path and sync the directory. Readers
// see the old file or the new one, never a mix. Temporary files an
// interrupted run left behind for more than an hour are removed.
func WriteAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	removeStale(dir, filepath.Base(path)+".tmp-")
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

func removeStale(dir, prefix string) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > time.Hour {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}
