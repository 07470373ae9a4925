package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/mtuscope/mtuscope/internal/testnet"
	"github.com/mtuscope/mtuscope/packet"
	"golang.org/x/sys/unix"
)

// seen is what a capture held, decoded with package packet.
type seen struct {
	tcp    map[string]int // TCP segments to or from port 443, by headers
	nTCP   int
	toSrv  int // segments to port 443
	fromSv int // segments from port 443
	fam    [7]int
	vlans  map[uint16]int // TCP segments by VLAN ID (0: untagged)
	tooBig map[uint8]int  // ICMP too-big by family
	other  int            // packets the live filter must have dropped
}

func newSeen() *seen {
	return &seen{tcp: map[string]int{}, vlans: map[uint16]int{}, tooBig: map[uint8]int{}}
}

func (s *seen) add(t *testing.T, link packet.LinkType, data []byte) {
	var p packet.Packet
	if err := packet.Decode(link, data, &p); err != nil && !errors.Is(err, packet.ErrNotIP) {
		t.Errorf("decode %s frame of %d bytes: %v", link, len(data), err)
		return
	}
	if p.TooBig() {
		s.tooBig[p.Family]++
	}
	watched := func(port uint16) bool { return port == 443 || port == 8443 }
	switch {
	case !p.Transport:
		s.other++
		return
	case p.Proto == packet.ProtoICMP && p.ICMP.Type == 3, p.Proto == packet.ProtoICMPv6 && p.ICMP.Type < 128:
		return
	case p.Proto != packet.ProtoTCP || !watched(p.TCP.SrcPort) && !watched(p.TCP.DstPort):
		s.other++
		return
	}
	s.nTCP++
	s.fam[p.Family]++
	s.vlans[p.VLAN]++
	if p.TCP.DstPort == 443 {
		s.toSrv++
	} else {
		s.fromSv++
	}
	s.tcp[fmt.Sprintf("%s:%d>%s:%d %s seq %d ack %d len %d", p.Src, p.TCP.SrcPort, p.Dst, p.TCP.DstPort,
		p.TCP.Flags, p.TCP.Seq, p.TCP.Ack, p.PayloadLen)]++
}

// readFile decodes a tcpdump capture.
func readFile(t *testing.T, path string) *seen {
	t.Helper()
	src, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	s := newSeen()
	for {
		data, ci, err := src.Next()
		if err == io.EOF {
			return s
		}
		if err != nil {
			t.Fatal(err)
		}
		s.add(t, ci.Link, data)
	}
}

// live is a live capture read by a goroutine until Close.
type live struct {
	src  Source
	idle chan struct{} // a value after each ErrIdle
	done chan *seen
}

func startLive(t *testing.T, h *testnet.Host, cfg LiveConfig) *live {
	t.Helper()
	var src Source
	if err := h.Do(func() (err error) { src, err = OpenLive(cfg); return err }); err != nil {
		t.Fatalf("OpenLive(%+v): %v", cfg, err)
	}
	l := &live{src: src, idle: make(chan struct{}, 1), done: make(chan *seen, 1)}
	t.Cleanup(func() { src.Close() })
	go func() {
		s := newSeen()
		for {
			data, ci, err := src.Next()
			switch {
			case errors.Is(err, ErrIdle):
				select {
				case l.idle <- struct{}{}:
				default:
				}
				continue
			case err == io.EOF:
				l.done <- s
				return
			case err != nil:
				t.Errorf("Next: %v", err)
				l.done <- s
				return
			}
			if len(data) != ci.CaptureLength || ci.Length < ci.CaptureLength || ci.Timestamp.IsZero() {
				t.Errorf("info %+v for %d bytes", ci, len(data))
			}
			s.add(t, ci.Link, data)
		}
	}()
	return l
}

// stop waits until the reader has found the ring empty for a whole poll
// timeout (so it has read everything sent before), then closes the source.
func (l *live) stop(t *testing.T) (*seen, Stats) {
	t.Helper()
	select {
	case <-l.idle: // an idle from before
	default:
	}
	<-l.idle
	st := l.src.Stats()
	if err := l.src.Close(); err != nil {
		t.Fatal(err)
	}
	s := <-l.done
	if after := l.src.Stats(); after.Dropped != st.Dropped || after.Packets != st.Packets {
		t.Errorf("stats changed over Close: %+v, then %+v", st, after)
	}
	return s, st
}

// curl fetches from a client, expecting success.
func curl(t *testing.T, h *testnet.Host, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if r := h.Run(ctx, "curl", args...); r.ExitCode != 0 {
		t.Fatalf("curl %v: %s", args, r)
	}
}

// settle waits until no TCP connection of port 443 on the hosts is in a
// state that still sends (all closed or in TIME-WAIT), so a capture
// stopped afterwards has seen every packet.
func settle(t *testing.T, hosts ...*testnet.Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, h := range hosts {
		for {
			r := h.Run(ctx, "ss", "-Htan", "state", "connected", "exclude", "time-wait", "( sport = :443 or dport = :443 )")
			if r.ExitCode != 0 {
				t.Fatalf("ss in %s: %s", h, r)
			}
			if len(strings.TrimSpace(string(r.Stdout))) == 0 {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("connections in %s do not close:\n%s", h, r.Stdout)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
}

// compare checks that the live capture holds exactly tcpdump's segments.
func compare(t *testing.T, got, want *seen) {
	t.Helper()
	if got.nTCP != want.nTCP {
		t.Errorf("live capture: %d TCP segments of port 443, tcpdump: %d", got.nTCP, want.nTCP)
	}
	n := 0
	for k, w := range want.tcp {
		if g := got.tcp[k]; g != w && n < 5 {
			t.Errorf("%s: live %d, tcpdump %d", k, g, w)
			n++
		}
	}
	for k, g := range got.tcp {
		if _, ok := want.tcp[k]; !ok && n < 10 {
			t.Errorf("%s: live %d, not in tcpdump's capture", k, g)
			n++
		}
	}
	if got.toSrv == 0 || got.fromSv == 0 {
		t.Errorf("one direction missing: %d segments to the server, %d from it", got.toSrv, got.fromSv)
	}
}

// TestLive captures live in the testbed's server namespace while curl
// fetches from nginx, and checks each capture against tcpdump's capture of
// the same traffic. S3's 1400-byte middle link makes the routers send
// ICMP too-big to the server.
func TestLive(t *testing.T) {
	testnet.Require(t)
	testnet.RequireTools(t, "nginx", "curl", "tcpdump")
	n := testnet.New(t, testnet.Preset("S3"))
	ng := n.StartNginx(t)
	dir := t.TempDir()
	fetch := func() {
		for _, fam := range []int{4, 6} {
			curl(t, n.Client, ng.Curl(fam, "/small.txt", 20*time.Second)...)
			curl(t, n.Client, ng.Curl(fam, "/large.bin", 20*time.Second)...)
			// Plain HTTP on port 80: the kernel filter must keep it out.
			curl(t, n.Client, "-sS", "-o", "/dev/null", "--max-time", "20", ng.HTTPURL(fam, "/large.bin"))
		}
	}
	const filter = "tcp port 443 or icmp or icmp6"

	for _, iface := range []string{"br0", AnyInterface} {
		t.Run(iface, func(t *testing.T) {
			if err := n.FlushPMTU(context.Background()); err != nil {
				t.Fatal(err)
			}
			l := startLive(t, n.Server, LiveConfig{Interface: iface, Ports: []uint16{443, 8443}})
			file := filepath.Join(dir, iface+".pcap")
			c, err := n.Server.Capture(iface, file, "-B", "65536", filter)
			if err != nil {
				t.Fatal(err)
			}
			fetch()
			settle(t, n.Client, n.Server)
			got, st := l.stop(t)
			// tcpdump's filter keeps every packet the live one does (and
			// more ICMP): wait until it has written as many before stopping.
			summary, err := c.StopAfter(got.nTCP + got.tooBig[4] + got.tooBig[6])
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("tcpdump: %s", summary)
			want := readFile(t, file)
			compare(t, got, want)
			if got.fam[4] == 0 || got.fam[6] == 0 {
				t.Errorf("segments by family: %d IPv4, %d IPv6", got.fam[4], got.fam[6])
			}
			if got.tooBig[4] == 0 || got.tooBig[6] == 0 || got.tooBig[4] != want.tooBig[4] || got.tooBig[6] != want.tooBig[6] {
				t.Errorf("ICMP too-big by family: live %v, tcpdump %v", got.tooBig, want.tooBig)
			}
			if got.other != 0 {
				t.Errorf("%d packets delivered that the filter should have dropped", got.other)
			}
			if st.Dropped != 0 || st.Packets == 0 || st.Bytes == 0 {
				t.Errorf("stats %+v", st)
			}
			t.Logf("%s: %d segments of port 443 (%d IPv4, %d IPv6), too-big %v, stats %+v",
				iface, got.nTCP, got.fam[4], got.fam[6], got.tooBig, st)
		})
	}

	t.Run("vlan", func(t *testing.T) {
		// This kernel has no 8021q module for VLAN devices, so tagged
		// frames are written raw into one end of a veth pair. The sending
		// end's capture sees the tag inline; the receiving end's kernel
		// strips it into the packet's metadata (the filter sees an untagged
		// frame) and afpacket puts it back, as libpcap does for tcpdump.
		ctx := context.Background()
		if r := n.Server.Run(ctx, "ip", "link", "add", "vlt0", "type", "veth", "peer", "name", "vlt1"); r.ExitCode != 0 {
			t.Fatal(r)
		}
		for _, dev := range []string{"vlt0", "vlt1"} {
			if r := n.Server.Run(ctx, "ip", "link", "set", dev, "up"); r.ExitCode != 0 {
				t.Fatal(r)
			}
		}
		var frames [][]byte
		tagged := 0
		for i, ip := range [][]byte{
			serialize(t, v4(layers.IPProtocolTCP), tcp(40000, 443), gopacket.Payload(make([]byte, 1000))),
			serialize(t, v4(layers.IPProtocolTCP), tcp(443, 40000)),
			serialize(t, v6(layers.IPProtocolTCP), tcp(40001, 443), gopacket.Payload(make([]byte, 1200))),
			serialize(t, v6(layers.IPProtocolTCP), tcp(443, 40001)),
			serialize(t, v4(layers.IPProtocolICMPv4), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 4), Seq: 1400},
				gopacket.Payload(serialize(t, v4(layers.IPProtocolTCP), tcp(443, 40000)))),
			serialize(t, v4(layers.IPProtocolTCP), tcp(40000, 80)), // filtered out
		} {
			frames = append(frames, ethernet(t, ip, [2]uint16{0x8100, 42}))
			if i < 4 {
				tagged++
			}
		}
		frames = append(frames, ethernet(t, serialize(t, v4(layers.IPProtocolTCP), tcp(40002, 443))))

		for _, dev := range []string{"vlt0", "vlt1"} {
			t.Run(dev, func(t *testing.T) {
				l := startLive(t, n.Server, LiveConfig{Interface: dev, Ports: []uint16{443}})
				file := filepath.Join(dir, dev+".pcap")
				c, err := n.Server.Capture(dev, file)
				if err != nil {
					t.Fatal(err)
				}
				if err := n.Server.Do(func() error { return inject("vlt0", frames) }); err != nil {
					t.Fatal(err)
				}
				// Every injected frame reaches both ends of the pair, and
				// tcpdump captures them all (no filter).
				if _, err := c.StopAfter(len(frames)); err != nil {
					t.Fatal(err)
				}
				got, _ := l.stop(t)
				want := readFile(t, file)
				compare(t, got, want)
				if got.nTCP != tagged+1 || got.vlans[42] != tagged || got.vlans[0] != 1 {
					t.Errorf("segments of port 443 by VLAN: %v, want %d tagged 42 and one untagged", got.vlans, tagged)
				}
				if got.other != 0 {
					t.Errorf("%d packets delivered that the filter should have dropped (tagged port 80)", got.other)
				}
				if got.tooBig[4] != 1 {
					t.Errorf("tagged ICMP frag-needed: %v", got.tooBig)
				}
			})
		}
	})

	t.Run("drops", func(t *testing.T) {
		// The smallest ring (two 32 KiB blocks), never read while nginx
		// sends: the kernel must drop, and say so.
		var src Source
		if err := n.Server.Do(func() (err error) {
			src, err = OpenLive(LiveConfig{Interface: "br0", Ports: []uint16{443}, BufferSize: 64 << 10})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		for range 3 {
			curl(t, n.Client, ng.Curl(4, "/large.bin", 20*time.Second)...)
		}
		st := src.Stats()
		if st.Dropped == 0 {
			t.Fatalf("no drops counted: %+v", st)
		}
		src.Close()
		if after := src.Stats(); after.Dropped < st.Dropped {
			t.Errorf("drops went from %d to %d over Close", st.Dropped, after.Dropped)
		}
		t.Logf("stats of an unread 64 KiB ring: %+v", st)
	})

	t.Run("idle and close", func(t *testing.T) {
		var src Source
		if err := n.R2[0].Do(func() (err error) {
			src, err = OpenLive(LiveConfig{Interface: "lo", Ports: []uint16{443}, PollTimeout: 20 * time.Millisecond})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := src.Next(); !errors.Is(err, ErrIdle) {
			t.Fatalf("Next on an idle interface: %v, want ErrIdle", err)
		}
		errc := make(chan error)
		go func() {
			for {
				if _, _, err := src.Next(); !errors.Is(err, ErrIdle) {
					errc <- err
					return
				}
			}
		}()
		if err := src.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != io.EOF {
			t.Fatalf("Next after Close: %v, want io.EOF", err)
		}
		if err := src.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})
}

func TestLiveConfigErrors(t *testing.T) {
	for _, cfg := range []LiveConfig{
		{Ports: []uint16{443}},
		{Interface: "lo"},
		{Interface: "lo", Ports: []uint16{0}},
		{Interface: "lo", Ports: []uint16{443}, Snaplen: 10},
		{Interface: "lo", Ports: []uint16{443}, BufferSize: 1000},
		{Interface: "lo", Ports: []uint16{443}, PollTimeout: time.Microsecond},
		{Interface: "no-such-interface0", Ports: []uint16{443}},
	} {
		if src, err := OpenLive(cfg); err == nil {
			src.Close()
			t.Errorf("OpenLive(%+v): no error", cfg)
		} else if !strings.HasPrefix(err.Error(), "capture: ") {
			t.Errorf("OpenLive(%+v): %v, want a capture: error", cfg, err)
		}
	}
}

// TestLiveNeedsCapNetRaw runs OpenLive in a child process without
// CAP_NET_RAW (setpriv drops it from the bounding set, so even root loses
// it across exec): the error must name the capability.
func TestLiveNeedsCapNetRaw(t *testing.T) {
	if os.Getenv("MTUSCOPE_LIVE_CHILD") == "1" {
		_, err := OpenLive(LiveConfig{Interface: "lo", Ports: []uint16{443}})
		if err == nil {
			fmt.Println("RESULT opened")
			return
		}
		fmt.Printf("RESULT permission=%v %v\n", errors.Is(err, os.ErrPermission), err)
		return
	}
	args := []string{os.Args[0], "-test.run=^TestLiveNeedsCapNetRaw$", "-test.count=1"}
	if os.Geteuid() == 0 {
		if _, err := exec.LookPath("setpriv"); err != nil {
			t.Skip("no setpriv to drop CAP_NET_RAW")
		}
		args = append([]string{"setpriv", "--inh-caps=-all", "--bounding-set=-net_raw", "--"}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "MTUSCOPE_LIVE_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	i := strings.Index(string(out), "RESULT ")
	if i < 0 {
		t.Fatalf("child said nothing:\n%s", out)
	}
	res := strings.SplitN(string(out[i:]), "\n", 2)[0]
	if !strings.Contains(res, "permission=true") || !strings.Contains(res, "CAP_NET_RAW") {
		t.Errorf("without CAP_NET_RAW: %s", res)
	}
	t.Log(res)
}

// inject writes Ethernet frames out of dev through a packet socket.
func inject(dev string, frames [][]byte) error {
	ifi, err := net.InterfaceByName(dev)
	if err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	for _, f := range frames {
		if err := unix.Sendto(fd, f, 0, &unix.SockaddrLinklayer{Ifindex: ifi.Index}); err != nil {
			return fmt.Errorf("send on %s: %w", dev, err)
		}
	}
	return nil
}
