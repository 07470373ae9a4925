//go:build !linux

package server

import (
	"context"
	"errors"
	"net"
	"syscall"
)

var errNotLinux = errors.New("MSS-clamped listeners, TCP_SAVED_SYN and TCP_INFO are not supported on this OS")

func listenTCP(context.Context, string, string, int) (net.Listener, error) { return nil, errNotLinux }
func savedSYN(syscall.RawConn) ([]byte, error)                             { return nil, errNotLinux }
func tcpInfo(syscall.RawConn) (TCPInfo, error)                             { return TCPInfo{}, errNotLinux }
func setDF(syscall.RawConn, bool) error                                    { return errNotLinux }
