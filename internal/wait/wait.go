// Package wait is the one context-aware sleep the project's retries,
// backoffs and rate-limit waits share.
package wait

import (
	"context"
	"time"
)

// Sleep waits d, or less when ctx ends first, and then returns ctx's error.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
