package realcap

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// The independent reference: tshark's dissection of the same capture,
// reduced per TCP connection to what happened to its TLS handshake.

// refConn is one TCP connection as tshark reads it.
type refConn struct {
	stream     int
	cport      uint16 // client port (SYN sender, or first ClientHello sender)
	sport      uint16
	hello      bool // a ClientHello (TLS or SSLv2) from the client
	serverHi   bool // a ServerHello (or SSLv2 SERVER-HELLO) from the server
	retry      bool // a HelloRetryRequest came first
	answered   bool // a client record after the last ServerHello, not a hello
	alert      int  // first alert description before completion, -1 none, -2 encrypted
	alertByCli bool
}

// class is the reference's outcome: completed, alert:N (alert:enc for an
// encrypted one), server_hello_only, hello_only, no_hello.
func (c *refConn) class() string {
	complete := c.serverHi && c.answered
	switch {
	case !c.hello:
		return "no_hello"
	case c.alert == -2:
		return "alert:enc"
	case c.alert >= 0:
		return "alert:" + strconv.Itoa(c.alert)
	case complete:
		return "completed"
	case c.serverHi:
		return "server_hello_only"
	}
	return "hello_only"
}

// tsharkFields are the fields read per frame, in this order.
var tsharkFields = []string{"tcp.stream", "tcp.srcport", "tcp.dstport", "tcp.flags.syn", "tcp.flags.ack",
	"tls.handshake.type", "tls.record.content_type", "tls.record.opaque_type", "tls.alert_message.desc",
	"tls.handshake.random"}

// helloRetryRandom is RFC 8446's HelloRetryRequest random, as tshark prints it.
const helloRetryRandom = "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c"

// reference runs tshark over path and returns its connections by stream.
func reference(tshark, path string) (map[int]*refConn, error) {
	// Out-of-order segments reassembled: a ServerHello whose first
	// segment came late is still read.
	args := []string{"-r", path, "-n", "-o", "tcp.reassemble_out_of_order:TRUE", "-Y", "tls || tcp.flags.syn==1", "-T", "fields",
		"-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=,"}
	for _, f := range tsharkFields {
		args = append(args, "-e", f)
	}
	cmd := exec.Command(tshark, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("tshark on %s: %w: %s", path, err, errb.String())
	}
	conns := map[int]*refConn{}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) < len(tsharkFields) || f[0] == "" {
			continue
		}
		// The innermost TCP header (tunnels) is the last occurrence.
		last := func(s string) string { return s[strings.LastIndexByte(s, ',')+1:] }
		stream, _ := strconv.Atoi(last(f[0]))
		src64, _ := strconv.ParseUint(last(f[1]), 10, 16)
		dst64, _ := strconv.ParseUint(last(f[2]), 10, 16)
		src, dst := uint16(src64), uint16(dst64)
		c := conns[stream]
		if c == nil {
			c = &refConn{stream: stream, alert: -1}
			conns[stream] = c
		}
		types := split(f[5])
		if last(f[3]) == "1" && last(f[4]) == "0" && c.cport == 0 {
			c.cport, c.sport = src, dst
		}
		if c.cport == 0 && has(types, "1") {
			c.cport, c.sport = src, dst
		}
		fromClient := src == c.cport && dst == c.sport
		content, opaque, alerts := split(f[6]), split(f[7]), split(f[8])
		tls := len(types) > 0 || len(content) > 0 || len(opaque) > 0
		if (len(alerts) > 0 || has(content, "21")) && !(c.serverHi && c.answered) {
			// An alert before the handshake completed ends it.
			if c.alert == -1 {
				c.alert = -2
				if len(alerts) > 0 {
					c.alert, _ = strconv.Atoi(alerts[0])
				}
				c.alertByCli = fromClient
			}
			continue
		}
		switch {
		case fromClient && has(types, "1"):
			c.hello = true
		case !fromClient && (has(types, "2") || has(types, "4") && len(content) == 0):
			// Type 4 in an SSLv2 record (no content type) is its
			// SERVER-HELLO; in TLS it is a NewSessionTicket.
			if has(types, "2") && strings.Contains(f[9], helloRetryRandom) {
				c.retry = true
				break
			}
			c.serverHi, c.answered = true, false
		case fromClient && c.serverHi && tls:
			c.answered = true
		}
	}
	return conns, sc.Err()
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func has(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
