package labpeers

import (
	"context"
	"fmt"
	"time"
)

// poll calls check every probeInterval until it returns nil. It fails when
// exited is closed (the process under test has ended), when ctx ends, or
// after timeout; the error carries check's last one.
func poll(ctx context.Context, exited <-chan struct{}, timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("exited (last: %w)", err)
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case <-time.After(probeInterval):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still not after %v: %w", timeout, err)
		}
	}
}
