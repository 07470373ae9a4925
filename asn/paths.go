package asn

import (
	"errors"
	"os"
	"path/filepath"
)

// DBFile is the name of the database file in the data directory.
const DBFile = "asn.db"

// DefaultDir returns mtuscope's data directory: $XDG_DATA_HOME/mtuscope,
// or ~/.local/share/mtuscope when XDG_DATA_HOME is unset or relative.
func DefaultDir() (string, error) {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "mtuscope"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return "", errors.New("no data directory: set XDG_DATA_HOME or HOME, or pass --db")
	}
	return filepath.Join(home, ".local", "share", "mtuscope"), nil
}

// DefaultPath returns the database file in DefaultDir.
func DefaultPath() (string, error) {
	d, err := DefaultDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, DBFile), nil
}
