package probe

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// Target is a parsed command-line target.
type Target struct {
	// Input is the text as given.
	Input string
	// Host is a DNS name or an IP literal (without brackets).
	Host string
	Port int
	// Addr is set when Host is an IP literal.
	Addr netip.Addr
}

// ParseTarget accepts host, host:port, [v6]:port, an IP literal, or an
// https:// URL (path ignored); the port defaults to 443.
func ParseTarget(s string) (Target, error) {
	t := Target{Input: s, Port: 443}
	in := strings.TrimSpace(s)
	if in == "" {
		return t, fmt.Errorf("empty target")
	}
	if strings.Contains(in, "://") {
		u, err := url.Parse(in)
		if err != nil {
			return t, fmt.Errorf("target %q: %w", s, err)
		}
		if u.Scheme != "https" {
			return t, fmt.Errorf("target %q: scheme %q, want https:// (or a bare host)", s, u.Scheme)
		}
		in = u.Host
		if in == "" {
			return t, fmt.Errorf("target %q: no host in URL", s)
		}
	}
	host, port := in, ""
	if a, err := netip.ParseAddr(strings.Trim(in, "[]")); err == nil && (a.Is4() || strings.Count(in, ":") > 1) {
		host = a.String()
	} else if h, p, err := net.SplitHostPort(in); err == nil {
		host, port = h, p
	} else if strings.Contains(in, ":") {
		return t, fmt.Errorf("target %q: %v", s, err)
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return t, fmt.Errorf("target %q: port %q is not a number from 1 to 65535", s, port)
		}
		t.Port = n
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return t, fmt.Errorf("target %q: zoned addresses are not supported", s)
		}
		t.Addr, t.Host = a.Unmap(), a.Unmap().String()
		return t, nil
	}
	if !validHostname(host) {
		return t, fmt.Errorf("target %q: %q is neither a host name nor an IP address", s, host)
	}
	t.Host = strings.TrimSuffix(host, ".")
	return t, nil
}

func validHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
