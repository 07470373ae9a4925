// Command mtuscope-middlebox is a test device: run inside a router's
// network namespace, it puts one of internal/testnet/middlebox's devices on
// the forwarding path (NFQUEUE, with iptables and ip6tables rules for the
// TCP packets coming in by -iface) until SIGTERM or SIGINT, then takes it
// out again. It prints one JSON event per line on standard output: "ready"
// once in the path, a "hello" per ClientHello read, "stopped" with counts.
// The testbed starts it (testnet.Faults.Device); by hand:
//
//	ip netns exec NS mtuscope-middlebox -device pq-reject
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/mtuscope/mtuscope/internal/testnet/middlebox"
)

func main() {
	var (
		device   = flag.String("device", "", "the device: pq-reject, mldsa-reject, split-intolerant, length-window or observe")
		queue    = flag.Uint("queue", 0, "NFQUEUE queue number")
		iface    = flag.String("iface", "lan", "interface facing the clients; empty installs no iptables rules")
		maxFlows = flag.Int("max-flows", middlebox.DefaultMaxFlows, "flows remembered at most")
	)
	flag.Parse()
	kind, err := middlebox.ParseKind(*device)
	if err != nil || *queue > 65535 || flag.NArg() > 0 {
		if err == nil {
			err = fmt.Errorf("bad -queue or extra arguments")
		}
		fmt.Fprintln(os.Stderr, "mtuscope-middlebox:", err)
		flag.Usage()
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	enc := json.NewEncoder(os.Stdout)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err = middlebox.Run(ctx, middlebox.Config{
		Kind: kind, Queue: uint16(*queue), Iface: *iface, MaxFlows: *maxFlows, Log: log,
		Events: func(e middlebox.Event) {
			if err := enc.Encode(e); err != nil {
				log.Warn("writing an event", "err", err)
			}
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "mtuscope-middlebox:", err)
		os.Exit(1)
	}
}
