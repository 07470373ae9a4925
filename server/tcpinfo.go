package server

import "github.com/mtuscope/mtuscope/sockopt"

// TCPInfo is the part of the kernel's TCP_INFO the diagnosis uses, as
// snapshots and reports carry it.
type TCPInfo = sockopt.TCPInfo
