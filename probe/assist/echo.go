package assist

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"github.com/mtuscope/mtuscope/api"
	"github.com/mtuscope/mtuscope/api/echowire"
	"github.com/mtuscope/mtuscope/packet"
	"github.com/mtuscope/mtuscope/probe"
	"github.com/mtuscope/mtuscope/sockopt"
)

// udpToken returns a token for the echo, fetched over HTTPS (which proves
// this address to the server) and reused until shortly before it expires.
func (c *Client) udpToken(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && time.Until(c.tokenExp) > 30*time.Second {
		return c.token, nil
	}
	var t api.UDPToken
	if c.Caps.EchoToken == "" {
		return "", errors.New("the server runs no UDP echo")
	}
	if err := c.getJSON(ctx, c.Caps.EchoToken, &t); err != nil {
		return "", err
	}
	c.token, c.tokenExp = t.Token, t.Expires
	return t.Token, nil
}

// UDPEcho sends a datagram making an IP packet of size bytes to the echo
// and says whether it arrived (a short answer came back) and whether the
// server's answer of the same size came back, with Don't Fragment on both
// unless fragment is set.
func (c *Client) UDPEcho(ctx context.Context, size int, fragment bool) (probe.UDPEchoResult, error) {
	var res probe.UDPEchoResult
	tok, err := c.udpToken(ctx)
	if err != nil {
		return res, err
	}
	host, _, err := net.SplitHostPort(c.Base[len("https://"):])
	if err != nil {
		return res, err
	}
	dial := c.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	conn, err := dial(ctx, "udp", net.JoinHostPort(host, strconv.Itoa(c.Caps.EchoPort)))
	if err != nil {
		return res, err
	}
	defer conn.Close()
	hdr := packet.IPv4HeaderLen + packet.UDPHeaderLen
	if ap, err := netip.ParseAddrPort(conn.RemoteAddr().String()); err == nil && ap.Addr().Unmap().Is6() {
		hdr = packet.IPv6HeaderLen + packet.UDPHeaderLen
	}
	if sc, ok := conn.(syscall.Conn); ok {
		raw, err := sc.SyscallConn()
		if err == nil {
			err = sockopt.SetDontFragment(raw, !fragment)
		}
		if err != nil {
			return res, fmt.Errorf("udp echo: %w", err)
		}
	}
	payload := size - hdr
	flags := byte(0)
	if fragment {
		flags |= echowire.FlagFragment
	}
	short, err := echowire.AppendRequest(nil, flags, []byte(tok), payload)
	if err != nil {
		return res, err
	}
	full, _ := echowire.AppendRequest(nil, flags|echowire.FlagEcho, []byte(tok), payload)
	deadline := time.Now().Add(time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	conn.SetDeadline(deadline)
	for attempt := 0; attempt < 2 && !(res.Arrived && res.Echoed); attempt++ {
		conn.Write(short)
		conn.Write(full)
		buf := make([]byte, 65536)
		for !(res.Arrived && res.Echoed) {
			n, err := conn.Read(buf)
			if err != nil {
				break
			}
			r, err := echowire.ParseReply(buf[:n])
			if err != nil || r.RequestSize != payload {
				continue
			}
			res.Arrived = true
			if r.Flags&echowire.FlagEcho != 0 && r.Size == payload {
				res.Echoed = true
			}
		}
		deadline = time.Now().Add(time.Second)
		conn.SetDeadline(deadline)
	}
	return res, nil
}
