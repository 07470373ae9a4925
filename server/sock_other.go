//go:build !linux

package server

import (
	"context"
	"errors"
	"net"
	"syscall"
)

var errNotLinux = errors.New("MSS-clamped listeners and TCP_SAVED_SYN are not supported on this OS")

func listenTCP(context.Context, string, string, int) (net.Listener, error) { return nil, errNotLinux }
func savedSYN(syscall.RawConn) ([]byte, error)                             { return nil, errNotLinux }

// openFileLimit is unknown here: pendingBound then uses its default.
func openFileLimit() int { return 0 }
