package server

import (
	"errors"
	"fmt"

	"github.com/mtuscope/mtuscope/packet"
)

// Errors of a saved SYN whose IP header decodes but whose TCP part does not.
var (
	errSYNNotTCP     = errors.New("saved SYN: not a TCP segment")
	errSYNBadOptions = errors.New("saved SYN: malformed TCP options")
)

// synMSS returns the MSS option of a SYN saved by TCP_SAVE_SYN (its IPv4
// or IPv6 header, then the TCP header with options), decoded by package
// packet. It returns 0 and no error for a SYN without an MSS option.
func synMSS(b []byte) (int, error) {
	var p packet.Packet
	if err := packet.DecodeIP(b, &p); err != nil {
		return 0, fmt.Errorf("saved SYN: %w", err)
	}
	if !p.Transport || p.Proto != packet.ProtoTCP {
		return 0, errSYNNotTCP
	}
	if p.TCP.BadOptions {
		return 0, errSYNBadOptions
	}
	return int(p.TCP.MSS), nil
}
