package tlswire

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"testing"
	"time"
)

func testCert(t testing.TB) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "test.example"},
		DNSNames:     []string{"test.example"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// serve starts a crypto/tls server on loopback that handshakes each
// connection and closes it.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				_ = c.(*tls.Conn).Handshake()
				io.Copy(io.Discard, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// exchange sends h to addr and feeds the answer to a Flight.
func exchange(t *testing.T, addr string, h *Hello) (*Flight, error) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(h.Record); err != nil {
		t.Fatal(err)
	}
	f := NewFlight(h)
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		done, ferr := f.Feed(buf[:n])
		if ferr != nil {
			return f, ferr
		}
		if done {
			return f, nil
		}
		if err != nil {
			return f, err
		}
	}
}

func TestFlightAgainstCryptoTLS(t *testing.T) {
	cert := testCert(t)
	for _, tc := range []struct {
		name    string
		maxVer  uint16
		groups  []Group
		size    int
		wantVer uint16
		wantGrp Group
	}{
		{"tls13 x25519 natural", tls.VersionTLS13, []Group{GroupX25519}, 0, 0x0304, GroupX25519},
		{"tls13 p256 only", tls.VersionTLS13, []Group{GroupP256}, 0, 0x0304, GroupP256},
		{"tls13 mlkem padded to 1800", tls.VersionTLS13, []Group{GroupX25519MLKEM768, GroupX25519}, 1800, 0x0304, GroupX25519MLKEM768},
		{"tls13 small padded to 4000", tls.VersionTLS13, nil, 4000, 0x0304, GroupX25519},
		{"tls12 server", tls.VersionTLS12, nil, 700, 0x0303, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := serve(t, &tls.Config{Certificates: []tls.Certificate{cert}, MaxVersion: tc.maxVer})
			h, err := Build(HelloSpec{ServerName: "test.example", Groups: tc.groups, Size: tc.size, ALPN: []string{"http/1.1"}}, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			if tc.size != 0 && len(h.Record) != tc.size {
				t.Fatalf("record is %d bytes, want %d", len(h.Record), tc.size)
			}
			f, err := exchange(t, addr, h)
			if err != nil {
				t.Fatalf("flight: %v (messages %v)", err, f.Messages)
			}
			if !f.Complete || f.CompleteBytes <= 0 {
				t.Fatalf("flight not complete: %+v", f)
			}
			if f.ServerHello.Version != tc.wantVer || f.ServerHello.Group != tc.wantGrp {
				t.Errorf("server hello %+v, want version %x group %v", f.ServerHello, tc.wantVer, tc.wantGrp)
			}
			if _, err := f.Feed([]byte{1, 2, 3}); err != nil {
				t.Errorf("feed after completion: %v", err)
			}
		})
	}
}

func TestBuildParseRoundTrip(t *testing.T) {
	for _, size := range []int{0, 600, 1507, 1750, 4096} {
		h, err := Build(HelloSpec{ServerName: "server.example", Groups: []Group{GroupX25519MLKEM768, GroupX25519}, ALPN: []string{"h2", "http/1.1"}, Size: size}, rand.Reader)
		if size == 600 {
			if !errors.Is(err, ErrSize) {
				t.Fatalf("size 600 below the natural size: err %v, want ErrSize", err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		ch, err := ParseClientHello(h.Message())
		if err != nil {
			t.Fatal(err)
		}
		if ch.ServerName != "server.example" || len(ch.KeyShareGroups) != 2 || ch.KeyShareGroups[0] != GroupX25519MLKEM768 ||
			len(ch.ALPN) != 2 || ch.Size+RecordHeaderLen != len(h.Record) || ch.Padding != h.Padding {
			t.Errorf("size %d: parsed %+v", size, ch)
		}
		if string(ch.SessionID) != string(h.SessionID) {
			t.Errorf("session id differs")
		}
		// Shares for the two, but the classical curves offered too, as a
		// browser's hello does (an ECDSA server needs its curve listed).
		want := []Group{GroupX25519MLKEM768, GroupX25519, GroupP256, GroupP384}
		if fmt.Sprint(ch.Groups) != fmt.Sprint(want) {
			t.Errorf("size %d: supported_groups %v, want %v", size, ch.Groups, want)
		}
	}
}

func TestBuildSizes(t *testing.T) {
	nat, err := NaturalSize(HelloSpec{ServerName: "a.example"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		size int
		ok   bool
	}{
		{nat, true}, {nat + 1, false}, {nat + 3, false}, {nat + 4, true}, {nat + 5, true},
		{nat - 1, false}, {MaxHelloSize, true}, {MaxHelloSize + 1, false},
	} {
		h, err := Build(HelloSpec{ServerName: "a.example", Size: tc.size}, rand.Reader)
		if (err == nil) != tc.ok {
			t.Errorf("size %d (natural %d): err %v, want ok=%v", tc.size, nat, err, tc.ok)
			continue
		}
		if err == nil && len(h.Record) != tc.size {
			t.Errorf("size %d: got %d", tc.size, len(h.Record))
		}
	}
	if _, err := Build(HelloSpec{ServerName: "192.0.2.1"}, rand.Reader); err != nil {
		t.Errorf("IP literal server name: %v", err)
	}
}

func TestFlightNotTLS(t *testing.T) {
	h, err := Build(HelloSpec{}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{"SSH-2.0-OpenSSH_9.2\r\n", "HTTP/1.1 400 Bad Request\r\n"} {
		_, err := NewFlight(h).Feed([]byte(in))
		var nt *NotTLSError
		if !errors.As(err, &nt) || string(nt.Prefix[:4]) != in[:4] {
			t.Errorf("%q: err %v, want NotTLSError", in, err)
		}
	}
	_, err = NewFlight(h).Feed([]byte{21, 3, 3, 0, 2, 2, 40})
	var ae *AlertError
	if !errors.As(err, &ae) || ae.Description != 40 || AlertName(ae.Description) != "handshake_failure" {
		t.Errorf("alert: %v", err)
	}
}
