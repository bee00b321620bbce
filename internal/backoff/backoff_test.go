package backoff

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestExponentialBounds(t *testing.T) {
	e := Exponential{Base: 10 * time.Millisecond, Max: time.Second}
	for _, tc := range []struct {
		attempt int
		ceiling time.Duration
	}{
		{0, 10 * time.Millisecond},
		{1, 20 * time.Millisecond},
		{3, 80 * time.Millisecond},
		{7, time.Second},
		{100, time.Second},
		{-1, 10 * time.Millisecond},
	} {
		for range 200 {
			if d := e.Full(tc.attempt); d <= 0 || d > tc.ceiling {
				t.Fatalf("Full(%d) = %v, want in (0, %v]", tc.attempt, d, tc.ceiling)
			}
			if d := e.Equal(tc.attempt); d < tc.ceiling/2 || d > tc.ceiling {
				t.Fatalf("Equal(%d) = %v, want in [%v, %v]", tc.attempt, d, tc.ceiling/2, tc.ceiling)
			}
		}
	}
}

func TestSleepStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep on a canceled context = %v, want context.Canceled", err)
	}
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatalf("Sleep = %v", err)
	}
}
