package main

import (
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"
)

// progress draws a one-line progress bar on a terminal while a file is
// sent. It is never drawn when stderr is a file or a pipe: a log full of
// carriage returns helps nobody.
type progress struct {
	w     io.Writer
	total int64 // bytes of input, 0 when unknown (standard input)
	start time.Time

	read, sent, failed atomic.Int64

	stop chan struct{}
	done chan struct{}
}

func startProgress(w io.Writer, total int64, start time.Time) *progress {
	p := &progress{w: w, total: total, start: start, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case now := <-t.C:
				fmt.Fprintf(p.w, "\r%s\x1b[K", p.render(now))
			}
		}
	}()
	return p
}

// finish draws the final state and ends the line.
func (p *progress) finish() {
	close(p.stop)
	<-p.done
	fmt.Fprintf(p.w, "\r%s\x1b[K\n", p.render(time.Now()))
}

const barWidth = 30

// render is the bar's text at now, e.g.
//
//	[###############---------------]  50%  5,000 sent  3 failed  2,480/s
func (p *progress) render(now time.Time) string {
	var b strings.Builder
	if p.total > 0 {
		frac := float64(p.read.Load()) / float64(p.total)
		frac = min(max(frac, 0), 1)
		filled := int(frac * barWidth)
		fmt.Fprintf(&b, "[%s%s] %3.0f%%  ", strings.Repeat("#", filled), strings.Repeat("-", barWidth-filled), frac*100)
	}
	sent := p.sent.Load()
	fmt.Fprintf(&b, "%s sent  %s failed", thousands(sent), thousands(p.failed.Load()))
	if secs := now.Sub(p.start).Seconds(); secs > 0 {
		fmt.Fprintf(&b, "  %s/s", thousands(int64(float64(sent)/secs)))
	}
	return b.String()
}

// thousands formats n with comma separators: 12345 -> "12,345".
func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
