//go:build !linux

package capture

import "errors"

// OpenLive starts a live capture; it is only supported on Linux.
func OpenLive(cfg LiveConfig) (Source, error) {
	return nil, errors.New("capture: live capture is only supported on Linux (read a pcap file instead)")
}
