package clock

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestRealClockSleepCancel checks the production clock returns at once on a
// cancelled context, without waiting out the duration.
func TestRealClockSleepCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if err := (Real{}).Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep(cancelled, 1h) = %v; want context.Canceled", err)
	}
	if err := (Real{}).Sleep(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep(cancelled, 0) = %v; want context.Canceled", err)
	}
	if err := (Real{}).Sleep(context.Background(), 0); err != nil {
		t.Errorf("Sleep(background, 0) = %v; want nil", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Sleep with a cancelled context took %v", el)
	}
}

// Func reads the time it is given and waits on the wall clock.
func TestFunc(t *testing.T) {
	at := time.Unix(1_900_000_000, 0)
	c := Func(func() time.Time { return at })
	if !c.Now().Equal(at) {
		t.Errorf("Now = %v", c.Now())
	}
	if _, ok := Or(nil).(Real); !ok {
		t.Error("Or(nil) is not the wall clock")
	}
	if Or(c).Now() != at {
		t.Error("Or(c) is not c")
	}
}
