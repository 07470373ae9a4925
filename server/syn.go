package server

import (
	"encoding/binary"
	"errors"
)

// errSYN reports saved SYN headers that do not parse.
var errSYN = errors.New("saved SYN: malformed headers")

// synMSS returns the MSS option of a SYN saved by TCP_SAVE_SYN: its IPv4
// or IPv6 header followed by the TCP header with options. It returns 0 and
// no error for a SYN without an MSS option.
func synMSS(b []byte) (int, error) {
	if len(b) < 1 {
		return 0, errSYN
	}
	var tcp []byte
	switch b[0] >> 4 {
	case 4:
		ihl := int(b[0]&0x0f) * 4
		if ihl < 20 || len(b) < ihl || b[9] != 6 {
			return 0, errSYN
		}
		tcp = b[ihl:]
	case 6:
		// The kernel saves the fixed header and any extension headers; a
		// SYN carries none in practice, and we accept only TCP next.
		if len(b) < 40 || b[6] != 6 {
			return 0, errSYN
		}
		tcp = b[40:]
	default:
		return 0, errSYN
	}
	if len(tcp) < 20 {
		return 0, errSYN
	}
	off := int(tcp[12]>>4) * 4
	if off < 20 || len(tcp) < off {
		return 0, errSYN
	}
	opts := tcp[20:off]
	for len(opts) > 0 {
		switch kind := opts[0]; kind {
		case 0: // end of options
			return 0, nil
		case 1: // no-op
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 || int(opts[1]) < 2 || int(opts[1]) > len(opts) {
			return 0, errSYN
		}
		if opts[0] == 2 {
			if opts[1] != 4 {
				return 0, errSYN
			}
			return int(binary.BigEndian.Uint16(opts[2:4])), nil
		}
		opts = opts[opts[1]:]
	}
	return 0, nil
}
