package server

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// TestRungSpeaksTLSAndHTTP: one rung port answers TLS and plain HTTP, and
// a client that refuses the certificate leaves its alert on the record.
func TestRungSpeaksTLSAndHTTP(t *testing.T) {
	s := loopback(t, nil)
	port := strconv.Itoa(s.rungs[0].Port)
	for _, scheme := range []string{"http", "https"} {
		resp, err := client().Get(scheme + "://127.0.0.1:" + port + "/t/hello")
		if err != nil {
			t.Fatalf("%s: %v", scheme, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || (resp.TLS != nil) != (scheme == "https") {
			t.Errorf("%s: %s %q", scheme, resp.Status, b)
		}
	}
	// A client that verifies (and does not know the self-signed
	// certificate) refuses it with an alert.
	c, err := net.Dial("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	local := c.LocalAddr().(*net.TCPAddr)
	tc := tls.Client(c, &tls.Config{ServerName: "localhost"})
	if err := tc.Handshake(); err == nil {
		t.Fatal("the handshake with an unknown certificate succeeded")
	}
	c.Close()
	var alert string
	for deadline := time.Now().Add(10 * time.Second); alert == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, rec := range s.reg.since(local.AddrPort().Addr(), time.Time{}) {
			if rec.Client.Port() == uint16(local.Port) {
				alert = rec.snapshot().CertAlert
			}
		}
	}
	if alert != "bad certificate" {
		t.Errorf("record's certificate alert %q, want Go's %q", alert, "bad certificate")
	}
	// Neither TLS nor HTTP: net/http answers 400, as it would anywhere.
	c, err = net.Dial("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte{0x00, 0x01, 0x02, '\r', '\n', '\r', '\n'})
	c.(*net.TCPConn).CloseWrite()
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	b, _ := io.ReadAll(c)
	c.Close()
	if len(b) < 12 || string(b[9:12]) != "400" {
		t.Errorf("three bytes of garbage got %q", b)
	}
}
