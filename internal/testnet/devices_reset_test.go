package testnet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// seen is one TCP segment of a capture, as the test needs it.
type seen struct {
	src, dst string // addresses without ports
	ttl      uint8  // TTL or hop limit
	rst, syn bool
	seq, ack uint32
}

// readSegments decodes the TCP segments of a pcap file.
func readSegments(t *testing.T, file string) []seen {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []seen
	for {
		data, _, err := r.ReadPacketData()
		if err != nil {
			return out
		}
		p := gopacket.NewPacket(data, r.LinkType(), gopacket.Default)
		tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if tcp == nil {
			continue
		}
		s := seen{rst: tcp.RST, syn: tcp.SYN, seq: tcp.Seq, ack: tcp.Ack}
		if ip, ok := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok {
			s.src, s.dst, s.ttl = ip.SrcIP.String(), ip.DstIP.String(), ip.TTL
		} else if ip, ok := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6); ok {
			s.src, s.dst, s.ttl = ip.SrcIP.String(), ip.DstIP.String(), ip.HopLimit
		}
		out = append(out, s)
	}
}

// TestResetFromThePath: S13's device resets both ends as a firewall does.
// The client gets a reset that seems to come from the server but carries
// the device's TTL (64, where the server's own packets arrive with 62);
// the server gets one from the client's address and closes its side (its
// connection is gone, which it would not be had the sequence number been
// off: a reset out of place earns a challenge ACK, RFC 5961).
func TestResetFromThePath(t *testing.T) {
	RequireTools(t, "tcpdump", "ss")
	n := New(t, Preset("S13"))
	ng := n.StartNginx(t)
	dir := t.TempDir()
	cc, err := n.Client.Capture("eth0", filepath.Join(dir, "client.pcap"), "tcp port 443")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := n.Server.Capture("br0", filepath.Join(dir, "server.pcap"), "tcp port 443")
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range []int{4, 6} {
		if got := goClient(n.Client, ng, fam, nil, 0, okWithin); got != resets {
			t.Fatalf("v%d: Go's default hello through S13: %s, want %s", fam, got, resets)
		}
	}
	// The server's side is closed by the reset, not by a timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		r := n.Server.Run(ctx, "ss", "-Htn", "state", "established", "( sport = :443 )")
		if r.Err == nil && strings.TrimSpace(string(r.Stdout)) == "" {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the server still holds the connections: %s", r)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := cc.StopAfter(1); err != nil {
		t.Fatal(err)
	}
	if _, err := sc.StopAfter(1); err != nil {
		t.Fatal(err)
	}
	for _, fam := range []int{4, 6} {
		client, server := n.Client.Addr(fam).String(), n.Server.Addr(fam).String()
		var synack, toClient, toServer []seen
		for _, s := range readSegments(t, cc.File) {
			switch {
			case s.src == server && s.syn:
				synack = append(synack, s)
			case s.src == server && s.rst:
				toClient = append(toClient, s)
			}
		}
		for _, s := range readSegments(t, sc.File) {
			if s.src == client && s.rst {
				toServer = append(toServer, s)
			}
		}
		desc := fmt.Sprintf("v%d: SYN-ACKs %+v, resets to the client %+v, to the server %+v", fam, synack, toClient, toServer)
		if len(synack) != 1 || synack[0].ttl != 62 {
			t.Errorf("%s: want one SYN-ACK with TTL 62", desc)
		}
		// The device resets each hello copy it sees: on a busy machine the
		// client may retransmit its hello before the first reset lands,
		// and gets (and causes) a second, identical one.
		if !allTTL(toClient, 64) {
			t.Errorf("%s: want resets to the client with TTL 64 only", desc)
		}
		if !allTTL(toServer, 63) {
			t.Errorf("%s: want resets to the server with TTL 63 (64 less r2) only", desc)
		}
	}
}

// allTTL reports whether there is at least one segment and all carry ttl.
func allTTL(ss []seen, ttl uint8) bool {
	for _, s := range ss {
		if s.ttl != ttl {
			return false
		}
	}
	return len(ss) > 0
}
