// Command mtuscope finds why a TLS handshake hangs on one network and not on
// others: path MTU black holes, dropped fragments and their kin.
package main

import (
	"os"

	"github.com/mtuscope/mtuscope/internal/cli"
)

func main() {
	os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr))
}
