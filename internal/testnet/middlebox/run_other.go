//go:build !linux

package middlebox

import (
	"context"
	"errors"
)

// Run needs Linux's NFQUEUE.
func Run(ctx context.Context, cfg Config) error {
	return errors.New("middlebox: not supported on this OS (needs Linux's NFQUEUE)")
}
