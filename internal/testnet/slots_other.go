//go:build !unix

package testnet

import "testing"

// Heavy does nothing here: the namespace tests that need it run on Linux.
func Heavy(testing.TB, int) {}
