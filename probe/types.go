package probe

import "time"

// tcpInfo is the part of the kernel's TCP_INFO the tests read.
type tcpInfo struct {
	SndMSS, RcvMSS int // payload bytes per segment, sent and received (largest seen)
	Unacked        int // segments sent and not yet acknowledged
	Retrans        int
	PMTU           int
	RTT            time.Duration
	Timestamps     bool
}

// udpAnswer is what came back for one UDP probe.
type udpAnswer struct {
	Answer      string // "port_unreachable", "frag_needed", "icmp_error", "local_emsgsize", "none"
	MTU         int    // for frag_needed and local_emsgsize
	From        string // the address that sent the ICMP error
	ICMPType    int
	ICMPCode    int
	LocalTooBig bool
	Sent        int
	Err         error
}
