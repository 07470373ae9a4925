package probe

import (
	"errors"
	"net"
	"syscall"

	"github.com/mtuscope/mtuscope/sockopt"
)

// dialControl returns a net.Dialer Control hook that sets TCP_MAXSEG before
// connect, which lowers both the MSS this host advertises and the one it
// sends with; 0 leaves the MSS alone.
func dialControl(mss int) func(network, address string, c syscall.RawConn) error {
	return sockopt.MaxSegControl(mss)
}

// errPortable is what the portable mode answers where the Linux mode reads
// the kernel: it tests the code path of systems without TCP_INFO.
var errPortable = errors.New("portable mode: no TCP_INFO")

// tcpInfo is readTCPInfo, except in the portable mode.
func (r *runner) tcpInfo(c net.Conn) (tcpInfo, error) {
	if r.cfg.Portable {
		return tcpInfo{}, errPortable
	}
	return readTCPInfo(c)
}

// readTCPInfo returns the kernel's view of a TCP connection.
func readTCPInfo(c net.Conn) (tcpInfo, error) {
	tc, ok := c.(interface {
		SyscallConn() (syscall.RawConn, error)
	}) // a *net.TCPConn, or a test's wrapper of one
	if !ok {
		return tcpInfo{}, errors.New("not a TCP connection")
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return tcpInfo{}, err
	}
	ti, err := sockopt.ReadTCPInfo(rc)
	if err != nil {
		return tcpInfo{}, err
	}
	return tcpInfo{
		SndMSS: ti.SndMSS, RcvMSS: ti.RcvMSS, Unacked: ti.Unacked,
		Retrans: ti.Retransmits, PMTU: ti.PMTU, RTT: ti.RTT(), Timestamps: ti.Timestamps, BytesAcked: ti.BytesAcked,
		OOOPackets: ti.RcvOOOPack,
	}, nil
}
