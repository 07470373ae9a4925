package sockopt

import (
	"net"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMaxSegAndTCPInfo clamps a real loopback connection's MSS and reads
// it back from TCP_INFO.
func TestMaxSegAndTCPInfo(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Write(make([]byte, 4000))
			c.Close()
		}
	}()
	const mss = 700
	d := net.Dialer{Control: MaxSegControl(mss)}
	c, err := d.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 4000)
	if _, err := c.Read(buf); err != nil {
		t.Fatal(err)
	}
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	ti, err := ReadTCPInfo(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !ti.Valid || ti.SndMSS == 0 || ti.SndMSS > mss || ti.AdvMSS > mss {
		t.Errorf("TCP_INFO after TCP_MAXSEG %d: %+v", mss, ti)
	}
	if ti.Timestamps != (ti.OptionBytes() == 12) {
		t.Errorf("OptionBytes %d with timestamps %v", ti.OptionBytes(), ti.Timestamps)
	}
	if err := SetMaxSeg(raw, -5); err == nil {
		t.Error("TCP_MAXSEG -5 accepted")
	}
}

// TestDontFragment sets and clears DF on UDP sockets of both families and
// reads the kernel's mode back.
func TestDontFragment(t *testing.T) {
	for _, tc := range []struct {
		network, addr string
		lvl, opt      int
		probe, dont   int
	}{
		{"udp4", "127.0.0.1:9", unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_PROBE, unix.IP_PMTUDISC_DONT},
		{"udp6", "[::1]:9", unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_PROBE, unix.IPV6_PMTUDISC_DONT},
	} {
		c, err := net.Dial(tc.network, tc.addr)
		if err != nil {
			t.Logf("%s: %v (skipped)", tc.network, err)
			continue
		}
		raw, _ := c.(*net.UDPConn).SyscallConn()
		for _, df := range []bool{true, false} {
			if err := SetDontFragment(raw, df); err != nil {
				t.Fatalf("%s df=%v: %v", tc.network, df, err)
			}
			want := tc.dont
			if df {
				want = tc.probe
			}
			if got := getInt(t, raw, tc.lvl, tc.opt); got != want {
				t.Errorf("%s df=%v: mode %d, want %d", tc.network, df, got, want)
			}
		}
		c.Close()
	}
}

func getInt(t *testing.T, raw syscall.RawConn, lvl, opt int) int {
	t.Helper()
	var v int
	var err error
	raw.Control(func(fd uintptr) { v, err = unix.GetsockoptInt(int(fd), lvl, opt) })
	if err != nil {
		t.Fatal(err)
	}
	return v
}
