package main

import (
	"io"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/internal/dev/bench"
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

func TestBadDeliveryFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--fifo", "--batch-size", "20"},
		{"--fifo", "--window", "1s"},
		{"--batch-size", "20", "--window", "0"},
		{"--window", "500ms"},
		{"--worker", "--window", "2s"},
		{"--worker", "--batch-size", "10,20"},
		{"--batch-size", "10,20", "--window", "0,1s"},
		{"--rate", "-1"},
		{"--window", "soon"},
		{"--grants", "--rate", "100"},
		{"--grants", "--events", "100"},
		{"--grants", "--grant-counts", "0,21"},
		{"--grants", "--grant-counts", "a"},
		{"--grants", "--grant-rounds", "0"},
		{"--pools", "--grants"},
		{"--pools", "--batch-size", "10"},
		{"--pools", "--events", "100"},
		{"--pools", "--pool-members", "0,10"},
		{"--pools", "--pool-members", "a"},
		{"--pools", "--pool-events", "0"},
	} {
		if code := run(args, io.Discard, io.Discard); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}

func TestDefaultChartFor(t *testing.T) {
	for _, c := range []struct {
		kind string
		mode bench.Mode
		fifo bool
		rtt  time.Duration
		want string
	}{
		{"concurrency", bench.Lambda, false, 0, "docs/images/performance.png"},
		{"batchSize", bench.Lambda, false, 0, "docs/images/performance-batch-size.png"},
		{"window", bench.Lambda, false, 5 * time.Millisecond, "docs/images/performance-window-rtt5ms.png"},
		{"window", bench.Worker, false, 0, "docs/images/performance-worker-window.png"},
	} {
		if got := defaultChartFor(c.kind, c.mode, c.fifo, c.rtt); got != c.want {
			t.Errorf("defaultChartFor(%q, %v, %v, %v) = %q, want %q", c.kind, c.mode, c.fifo, c.rtt, got, c.want)
		}
	}
}
