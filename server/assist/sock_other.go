//go:build !linux

package assist

import "syscall"

// setDF is a no-op where the socket options are not known: datagrams go
// with the system's default.
func setDF(syscall.RawConn, bool) {}

func dialControl(string, string, syscall.RawConn) error { return nil }
