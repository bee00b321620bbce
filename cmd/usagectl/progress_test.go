package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestProgressBarShowsShareReadCountsAndRate(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name                     string
		total, read, sent, fails int64
		want                     string
	}{
		{"half of a file", 1000, 500, 5000, 3, "[###############---------------]  50%  5,000 sent  3 failed  2,500/s"},
		{"standard input: no bar", 0, 500, 12345, 0, "12,345 sent  0 failed  6,172/s"},
		{"read past the stat'd size", 100, 150, 10, 0, "[##############################] 100%  10 sent  0 failed  5/s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &progress{total: tt.total, start: start}
			p.read.Store(tt.read)
			p.sent.Store(tt.sent)
			p.failed.Store(tt.fails)
			if got := p.render(start.Add(2 * time.Second)); got != tt.want {
				t.Errorf("render = %q\n         want %q", got, tt.want)
			}
		})
	}
}

func TestProgressFinishEndsTheLine(t *testing.T) {
	var b bytes.Buffer
	p := startProgress(&b, 0, time.Now()) // finish waits for the drawing goroutine
	p.sent.Store(7)
	p.finish()
	if out := b.String(); !strings.HasSuffix(out, "\n") || !strings.Contains(out, "7 sent") {
		t.Errorf("output %q", out)
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestReadLineKeepsLongLinesBoundedAndCountsEveryByte(t *testing.T) {
	long := strings.Repeat("x", 100)
	r := bufio.NewReaderSize(strings.NewReader("short\n"+long+"\nlast"), 16)
	type line struct {
		text    string
		tooLong bool
		n       int
	}
	var got []line
	for {
		l, tooLong, n, err := readLine(r, 50)
		if n > 0 {
			got = append(got, line{string(l), tooLong, n})
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	want := []line{{"short\n", false, 6}, {"", true, 101}, {"last", false, 4}}
	if len(got) != len(want) {
		t.Fatalf("lines %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}
