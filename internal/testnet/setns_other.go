//go:build !linux

package testnet

import (
	"errors"
	"os"
)

// setns fails: network namespaces are Linux's.
func setns(*os.File) error { return errors.New("testnet: network namespaces need Linux") }
