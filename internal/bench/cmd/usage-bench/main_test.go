package main

import (
	"io"
	"testing"
	"time"
)

func TestDefaultChart(t *testing.T) {
	for rtt, want := range map[time.Duration]string{
		0:                       "docs/images/performance.png",
		5 * time.Millisecond:    "docs/images/performance-rtt5ms.png",
		2500 * time.Microsecond: "docs/images/performance-rtt2.5ms.png",
		500 * time.Microsecond:  "docs/images/performance-rtt500us.png",
	} {
		if got := defaultChart(rtt); got != want {
			t.Errorf("defaultChart(%v) = %q, want %q", rtt, got, want)
		}
	}
}

func TestBadRTT(t *testing.T) {
	for _, args := range [][]string{{"--rtt", "-1ms"}, {"--rtt", "5"}} {
		if code := run(args, io.Discard, io.Discard); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}
