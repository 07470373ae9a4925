package testnet

import (
	"context"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// TestLimitPassesSmallSegmentsInBulk: a per-direction size limit drops
// only packets above it, also in bulk. Without gso_max_segs 1 on the
// sender, veth handed the limit's router GSO super-packets, and a 256 KB
// transfer in 1340-byte segments died at a 1400-byte limit.
func TestLimitPassesSmallSegmentsInBulk(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"S7", "S8"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			n := New(t, Preset(name))
			ln, err := n.Server.Listen("tcp", "203.0.113.10:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			const size = 256 << 10
			got := make(chan int64, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					got <- -1
					return
				}
				defer c.Close()
				if name == "S8" { // the server sends
					n, _ := c.Write(make([]byte, size))
					got <- int64(n)
					return
				}
				c.SetDeadline(time.Now().Add(10 * time.Second))
				n, _ := io.Copy(io.Discard, c)
				got <- n
			}()
			d := n.Client.Dialer(&net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
				return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, 1300) })
			}})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := d(ctx, "tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			var moved int64
			if name == "S8" {
				moved, _ = io.Copy(io.Discard, io.LimitReader(c, size))
				<-got
			} else {
				w, _ := c.Write(make([]byte, size))
				c.(*net.TCPConn).CloseWrite()
				moved = int64(w)
				if r := <-got; r != size {
					moved = r
				}
			}
			if moved != size {
				t.Errorf("%s: %d of %d bytes moved in 1340-byte packets through the 1400-byte limit", name, moved, size)
			}
		})
	}
}
