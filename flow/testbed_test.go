package flow_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/capture"
	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/flow"
	"github.com/mtuscope/mtuscope/internal/testnet"
	"github.com/mtuscope/mtuscope/packet"
)

// client is one real TLS client run against nginx in the testbed.
type client struct {
	name string
	// small makes the hello small: curl (OpenSSL) when curl is set, else
	// Go with X25519 only. Otherwise Go's default post-quantum hello.
	small, curl bool
	// want is the outcome expected of this client's handshake.
	want diagnose.Outcome
}

// clientTimeout is how long each client waits before it gives up (and
// closes): shorter than the tracker's handshake timeout, as real clients
// and users are.
const clientTimeout = 3 * time.Second

// run makes one handshake from n.Client to nginx and returns the client's
// local port, to find the handshake in the captures.
func (c client) run(t *testing.T, n *testnet.Net, ng *testnet.Nginx, fam int) uint16 {
	t.Helper()
	if c.curl {
		// curl does not say its port: the test finds the handshake by
		// elimination (the one flow not from a Go client).
		res := n.Client.Run(context.Background(), "curl", ng.Curl(fam, "/small.txt", clientTimeout)...)
		t.Logf("%s: curl exit %d %s %s", c.name, res.ExitCode, res.Stdout, strings.TrimSpace(string(res.Stderr)))
		return 0
	}
	cfg, err := ng.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	if c.small {
		cfg.CurvePreferences = []tls.CurveID{tls.X25519}
	}
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	addr := netip.AddrPortFrom(n.Server.Addr(fam), 443).String()
	conn, err := n.Client.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("%s: dial %s: %v", c.name, addr, err)
	}
	defer conn.Close()
	port := uint16(conn.LocalAddr().(*net.TCPAddr).Port)
	tc := tls.Client(conn, cfg)
	err = tc.HandshakeContext(ctx)
	if err == nil {
		// A request, so the connection carries application data.
		conn.SetDeadline(time.Now().Add(clientTimeout))
		io.WriteString(tc, "GET /small.txt HTTP/1.1\r\nHost: "+testnet.ServerName+"\r\nConnection: close\r\n\r\n")
		io.Copy(io.Discard, tc)
	}
	t.Logf("%s: port %d handshake: %v", c.name, port, err)
	return port
}

// artifact returns where to keep a capture: $MTUSCOPE_ARTIFACTS/flow when
// set (they are worth looking at), else the test's temporary directory.
func artifact(t *testing.T, name string) string {
	dir := t.TempDir()
	if d := os.Getenv("MTUSCOPE_ARTIFACTS"); d != "" {
		dir = filepath.Join(d, "flow")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, name)
}

// track reads a capture file through the whole pipeline and returns the
// handshakes it emitted, by client port, and the tracker's figures.
func track(t *testing.T, file string, ports []uint16) (map[uint16]flow.Handshake, flow.Stats) {
	t.Helper()
	src, err := capture.OpenFile(file)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	got := map[uint16]flow.Handshake{}
	tr := flow.NewTracker(flow.Config{Ports: ports, Emit: func(h flow.Handshake) {
		if _, dup := got[h.Client.Port()]; dup {
			t.Errorf("%s: two handshakes from client port %d", file, h.Client.Port())
		}
		got[h.Client.Port()] = h
	}})
	var p packet.Packet
	var last time.Time
	for {
		data, ci, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if packet.Decode(ci.Link, data, &p) != nil {
			continue
		}
		tr.Packet(&p, ci.Timestamp)
		last = ci.Timestamp
	}
	tr.Flush(last)
	return got, tr.Stats()
}

func describe(h flow.Handshake) string {
	return fmt.Sprintf("%s %s (%s) hello %d B in %d segs pq=%v sni=%q mss %d/%d up %+v down %+v retrans %d icmp %d/%d flight %d",
		h.Client, h.Outcome, h.Detail, h.HelloBytes, h.HelloSegments, h.PQKeyShare, h.SNI, h.ClientMSS, h.ServerMSS,
		h.Up, h.Down, h.Retransmits, h.TooBig, h.TooBigMTU, h.FlightBytes)
}

// TestTestbedCaptures runs real clients against nginx across the
// scenarios' faults, captures both ends with tcpdump at once, and checks
// that each capture, read alone, gives each handshake the scenario's
// outcome with evidence that brackets the real path MTU.
func TestTestbedCaptures(t *testing.T) {
	testnet.Require(t)
	testnet.RequireTools(t, "tcpdump", "curl")
	big := client{name: "go-pq"}
	small := client{name: "go-x25519", small: true}
	curl := client{name: "curl", small: true, curl: true}
	cases := []struct {
		preset   string
		fam      int
		up, down int // the path MTU each way: every bracket must hold it
		clients  []client
		tooBig   bool
	}{
		{"S1", 4, 1500, 1500, []client{with(big, diagnose.Completed), with(curl, diagnose.Completed)}, false},
		{"S2", 4, 1400, 1400, []client{with(big, diagnose.StalledClientHello), with(small, diagnose.StalledServerFlight), with(curl, diagnose.StalledServerFlight)}, false},
		{"S3", 4, 1400, 1400, []client{with(big, diagnose.Completed), with(curl, diagnose.Completed)}, true},
		{"S4", 4, 1400, 1400, []client{with(big, diagnose.Completed), with(curl, diagnose.Completed)}, false},
		{"S7", 4, 1400, 1500, []client{with(big, diagnose.StalledClientHello), with(curl, diagnose.Completed)}, false},
		{"S8", 4, 1500, 1400, []client{with(small, diagnose.StalledServerFlight), with(curl, diagnose.StalledServerFlight)}, false},
		{"S6", 6, 1280, 1280, []client{with(big, diagnose.StalledClientHello), with(small, diagnose.StalledServerFlight)}, false},
	}
	for _, c := range cases {
		t.Run(c.preset, func(t *testing.T) {
			t.Parallel()
			n := testnet.New(t, testnet.Preset(c.preset))
			ng := n.StartNginx(t)
			n.FlushPMTU(context.Background())
			filter := []string{"tcp port 443 or icmp or icmp6"}
			srvFile := artifact(t, c.preset+"-server.pcap")
			cliFile := artifact(t, c.preset+"-client.pcap")
			sc, err := n.Server.Capture("br0", srvFile, filter...)
			if err != nil {
				t.Fatal(err)
			}
			cc, err := n.Client.Capture("eth0", cliFile, filter...)
			if err != nil {
				t.Fatal(err)
			}
			ports := map[uint16]client{}
			var curlClient *client
			for _, cl := range c.clients {
				if p := cl.run(t, n, ng, c.fam); p != 0 {
					ports[p] = cl
				} else {
					curlClient = &cl
				}
			}
			time.Sleep(200 * time.Millisecond) // the last FINs and RSTs
			if s, err := cc.Stop(); err != nil {
				t.Fatal(err, s)
			}
			if s, err := sc.Stop(); err != nil {
				t.Fatal(err, s)
			}
			for _, file := range []string{srvFile, cliFile} {
				side := "server"
				if file == cliFile {
					side = "client"
				}
				got, st := track(t, file, []uint16{443})
				t.Logf("%s capture: %+v", side, st)
				// Any port, TLS detected from the bytes: the same outcomes.
				if any, _ := track(t, file, nil); len(any) != len(got) {
					t.Errorf("%s capture, any port: %d handshakes, want %d", side, len(any), len(got))
				} else {
					for port, h := range any {
						if h.Outcome != got[port].Outcome {
							t.Errorf("%s capture, any port: %s %s, with port 443: %s", side, h.Client, h.Outcome, got[port].Outcome)
						}
					}
				}
				if len(got) != len(c.clients) {
					t.Errorf("%s capture: %d handshakes, want %d", side, len(got), len(c.clients))
				}
				sawTooBig := false
				for port, h := range got {
					t.Logf("%s capture: %s", side, describe(h))
					cl, ok := ports[port]
					if !ok {
						if curlClient == nil {
							t.Errorf("%s capture: a handshake from no client of the test: %s", side, describe(h))
							continue
						}
						cl = *curlClient
					}
					if h.Outcome != cl.want {
						t.Errorf("%s capture, %s: outcome %s (%s), want %s", side, cl.name, h.Outcome, h.Detail, cl.want)
					}
					if h.TooBig > 0 {
						sawTooBig = true
					}
					if h.Family != c.fam {
						t.Errorf("%s capture, %s: family %d, want %d", side, cl.name, h.Family, c.fam)
					}
					if h.HelloBytes > 0 && !cl.small && !h.PQKeyShare && h.Outcome != diagnose.StalledClientHello {
						t.Errorf("%s capture, %s: no post-quantum key share seen in Go's default hello", side, cl.name)
					}
					if !h.Up.Holds(c.up) || !h.Down.Holds(c.down) {
						t.Errorf("%s capture, %s: brackets up %+v down %+v do not hold the path MTU %d up, %d down", side, cl.name, h.Up, h.Down, c.up, c.down)
					}
					switch h.Outcome {
					case diagnose.StalledClientHello:
						if h.Up.Lost == 0 || h.Up.Delivered == 0 {
							t.Errorf("%s capture, %s: upstream bracket %+v: want both ends", side, cl.name, h.Up)
						}
						if h.HelloBytes < 1500 || h.HelloSegments < 1 {
							t.Errorf("%s capture, %s: hello of %d bytes in %d segments, want Go's post-quantum size", side, cl.name, h.HelloBytes, h.HelloSegments)
						}
					case diagnose.StalledServerFlight:
						if h.Down.Lost == 0 || h.Down.Delivered == 0 {
							t.Errorf("%s capture, %s: downstream bracket %+v: want both ends", side, cl.name, h.Down)
						}
					case diagnose.Completed:
						if !cl.curl && h.SNI != testnet.ServerName && h.HelloBytes > 0 { // curl dials an IP: no SNI
							t.Errorf("%s capture, %s: SNI %q, want %q", side, cl.name, h.SNI, testnet.ServerName)
						}
					}
				}
				if c.tooBig && !sawTooBig {
					t.Errorf("%s capture: no ICMP too-big matched to a handshake", side)
				}
			}
		})
	}
}

func with(c client, o diagnose.Outcome) client {
	c.want = o
	return c
}
