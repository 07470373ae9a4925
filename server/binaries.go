package server

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// The operator can hand out probe itself: Config.Binaries names a directory
// as `make cross` leaves it (bin/cross: mtuscope-OS-ARCH[.exe] and
// SHA256SUMS). The page listener serves those files under /dl/, and a
// report's "for your network team" section gives the command to run from
// the affected computer, for each system.

// binaryName is a file name make cross writes.
var binaryName = regexp.MustCompile(`^mtuscope-(linux|darwin|windows)-(amd64|arm64)(\.exe)?$`)

// probeBinary is one file the server hands out.
type probeBinary struct {
	Name, OS, Arch, SHA256 string
}

// loadBinaries reads dir's SHA256SUMS and checks every file it names
// against its sum; "" is no directory (nothing served).
func loadBinaries(dir string) ([]probeBinary, error) {
	if dir == "" {
		return nil, nil
	}
	f, err := os.Open(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		return nil, fmt.Errorf("binaries: %w", err)
	}
	defer f.Close()
	var out []probeBinary
	sc := bufio.NewScanner(io.LimitReader(f, 64<<10))
	for sc.Scan() {
		sum, name, ok := strings.Cut(strings.TrimSpace(sc.Text()), "  ")
		m := binaryName.FindStringSubmatch(name)
		if !ok || m == nil || len(sum) != 64 {
			return nil, fmt.Errorf("binaries: SHA256SUMS line %q: want \"SUM  mtuscope-OS-ARCH[.exe]\"", sc.Text())
		}
		got, err := fileSHA256(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("binaries: %w", err)
		}
		if got != strings.ToLower(sum) {
			return nil, fmt.Errorf("binaries: %s does not match its SHA256SUMS line", name)
		}
		out = append(out, probeBinary{Name: name, OS: m[1], Arch: m[2], SHA256: got})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("binaries: SHA256SUMS: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("binaries: %s/SHA256SUMS names no binary", dir)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// serveBinary serves GET /dl/{name}: one of the binaries loaded, or their
// SHA256SUMS; nothing else from the directory.
func (s *Server) serveBinary(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	ok := name == "SHA256SUMS"
	for _, b := range s.binaries {
		ok = ok || b.Name == name
	}
	if !ok {
		httpError(w, http.StatusNotFound, "no such file")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	if name == "SHA256SUMS" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	http.ServeFile(w, r, filepath.Join(s.cfg.Binaries, name))
}

// probeCommand is the command a report gives for one system.
type probeCommand struct {
	System   string
	Commands []string
}

// probeCommands returns, for each system a binary was loaded for, the
// commands that download it from this server and probe the page's
// listener (clamped: it answers across the black hole being diagnosed),
// for a report viewed at host.
func (s *Server) probeCommands(host string) []probeCommand {
	if len(s.binaries) == 0 {
		return nil
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	page := "https://" + net.JoinHostPort(host, portOf(s.Addrs["https"])) + "/"
	dl := page + "dl/"
	names := map[string]string{"windows": "Windows (PowerShell or cmd)", "darwin": "macOS (Terminal)", "linux": "Linux"}
	var out []probeCommand
	for _, b := range s.binaries {
		c := probeCommand{System: fmt.Sprintf("%s, %s", names[b.OS], b.Arch)}
		if b.OS == "windows" {
			c.Commands = []string{"curl.exe -fLo mtuscope.exe " + dl + b.Name, `.\mtuscope.exe probe ` + page}
		} else {
			c.Commands = []string{"curl -fLo mtuscope " + dl + b.Name + " && chmod +x mtuscope", "./mtuscope probe " + page}
		}
		out = append(out, c)
	}
	return out
}
