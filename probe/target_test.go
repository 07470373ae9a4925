package probe

import "testing"

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		in   string
		host string
		port int
		ip   bool
		bad  bool
	}{
		{in: "api.example.com", host: "api.example.com", port: 443},
		{in: "api.example.com:8443", host: "api.example.com", port: 8443},
		{in: "https://api.example.com/v1/x?y", host: "api.example.com", port: 443},
		{in: "https://api.example.com:444/", host: "api.example.com", port: 444},
		{in: "192.0.2.1", host: "192.0.2.1", port: 443, ip: true},
		{in: "192.0.2.1:80", host: "192.0.2.1", port: 80, ip: true},
		{in: "[2001:db8::1]:443", host: "2001:db8::1", port: 443, ip: true},
		{in: "2001:db8::1", host: "2001:db8::1", port: 443, ip: true},
		{in: "[::1]", host: "::1", port: 443, ip: true},
		{in: "https://[2001:db8::1]:8443/", host: "2001:db8::1", port: 8443, ip: true},
		{in: "", bad: true},
		{in: "http://example.com", bad: true},
		{in: "example.com:0", bad: true},
		{in: "example.com:99999", bad: true},
		{in: "example.com:https", bad: true},
		{in: "exa mple.com", bad: true},
		{in: "-bad.example", bad: true},
		{in: "a:b:c", bad: true},
		{in: "https://", bad: true},
	} {
		got, err := ParseTarget(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("%q: accepted as %+v", tc.in, got)
			}
			continue
		}
		if err != nil || got.Host != tc.host || got.Port != tc.port || got.Addr.IsValid() != tc.ip {
			t.Errorf("%q: got %+v, %v", tc.in, got, err)
		}
	}
}
