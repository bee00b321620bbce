package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/usage-event-service/usage-event-service/producer"
	"github.com/usage-event-service/usage-event-service/usage"
)

// maxLineBytes bounds one line of an events file. A valid event is
// rarely above a few KiB (at most about 40 KiB of known fields, more if
// written with \u escapes); the margin allows for unknown fields, which
// the contract ignores.
const maxLineBytes = 1 << 20

// maxListedFailures bounds the failures the human summary lists; --json
// lists them all.
const maxListedFailures = 50

// failure is one line that was not sent.
type failure struct {
	Line   int    `json:"line"`
	Reason string `json:"reason"` // a contract reason code, SEND_FAILED or LINE_TOO_LONG
	Field  string `json:"field,omitempty"`
	Error  string `json:"error"`
	// IdempotencyKey is the key the event was sent with, if any: resending
	// the line with it cannot count the event twice.
	IdempotencyKey string `json:"idempotencyKey,omitempty"`
}

// sendSummary is the outcome of sending a file.
type sendSummary struct {
	Lines       int            `json:"lines"`  // lines read
	Events      int            `json:"events"` // non-blank lines
	Sent        int            `json:"sent"`
	Failed      int            `json:"failed"`
	ByReason    map[string]int `json:"byReason"`
	Failures    []failure      `json:"failures"`
	Seconds     float64        `json:"seconds"`
	Interrupted bool           `json:"interrupted,omitempty"`
	ReadError   string         `json:"readError,omitempty"`
}

// batch is up to producer.MaxBatchEntries parsed events and their line
// numbers.
type batch struct {
	lines  []int
	events []usage.Event
}

// sendFile streams the events of path (or stdin for "-") through the
// publisher: one goroutine reads and validates lines into batches of ten,
// `concurrency` goroutines publish them, so reading, validating and the
// network overlap.
func (a *app) sendFile(ctx context.Context, pub *producer.Publisher, path string, concurrency int, asJSON bool) error {
	var in io.Reader = a.stdin
	var size int64
	if path != "-" {
		file, err := os.Open(path)
		if err != nil {
			return usagef("--file: %v", err)
		}
		defer file.Close()
		if fi, err := file.Stat(); err == nil && fi.Mode().IsRegular() {
			size = fi.Size()
		}
		in = file
	}

	start := time.Now()
	var prog *progress
	if isTerminal(a.stderr) {
		prog = startProgress(a.stderr, size, start)
	}
	sum := sendSummary{ByReason: map[string]int{}}
	var mu sync.Mutex // guards sum
	fail := func(f failure) {
		mu.Lock()
		sum.Failures = append(sum.Failures, f)
		mu.Unlock()
		if prog != nil {
			prog.failed.Add(1)
		}
	}

	batches := make(chan batch, concurrency)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				// The context's error is in the per-event results.
				results, _ := pub.PublishBatch(ctx, b.events)
				sent := 0
				for i, r := range results {
					if r.Err == nil {
						sent++
						continue
					}
					reason, field, msg := failureOf(r.Err)
					fail(failure{Line: b.lines[i], Reason: reason, Field: field, Error: msg, IdempotencyKey: r.IdempotencyKey})
				}
				mu.Lock()
				sum.Sent += sent
				mu.Unlock()
				if prog != nil {
					prog.sent.Add(int64(sent))
				}
			}
		}()
	}

	lines, events, readErr := readEvents(ctx, bufio.NewReaderSize(in, 64<<10), batches, fail, prog)
	close(batches)
	wg.Wait()
	if prog != nil {
		prog.finish()
	}

	sum.Lines, sum.Events = lines, events
	sum.Failed = len(sum.Failures)
	sort.Slice(sum.Failures, func(i, j int) bool { return sum.Failures[i].Line < sum.Failures[j].Line })
	for _, f := range sum.Failures {
		sum.ByReason[f.Reason]++
	}
	sum.Seconds = time.Since(start).Seconds()
	sum.Interrupted = ctx.Err() != nil
	if readErr != nil {
		sum.ReadError = readErr.Error()
	}

	if asJSON {
		if sum.Failures == nil {
			sum.Failures = []failure{}
		}
		if err := a.writeJSON(sum); err != nil {
			return err
		}
	} else {
		a.printSummary(sum)
	}
	switch {
	case readErr != nil:
		return fmt.Errorf("reading the events stopped at line %d: %w", lines, readErr)
	case sum.Interrupted:
		return fmt.Errorf("interrupted after line %d: %d of %d events read were not sent", lines, sum.Failed, sum.Events)
	case sum.Failed > 0:
		return fmt.Errorf("%d of %d events were not sent (see the summary)", sum.Failed, sum.Events)
	}
	return nil
}

// readEvents reads lines, parses each as an event, reports bad ones to
// fail and queues the good ones in batches. It returns the number of
// lines read and of events (non-blank lines) among them.
func readEvents(ctx context.Context, r *bufio.Reader, out chan<- batch, fail func(failure), prog *progress) (lines, events int, err error) {
	var cur batch
	flush := func() bool {
		if len(cur.events) == 0 {
			return true
		}
		select {
		case out <- cur:
			cur = batch{}
			return true
		case <-ctx.Done():
			// Everything parsed so far gets a result.
			for i, line := range cur.lines {
				fail(failure{Line: line, Reason: reasonSendFailed, Error: "not sent: " + ctx.Err().Error(), IdempotencyKey: cur.events[i].IdempotencyKey})
			}
			cur = batch{}
			return false
		}
	}
	for {
		line, tooLong, n, rerr := readLine(r, maxLineBytes)
		if prog != nil {
			prog.read.Add(int64(n))
		}
		if n > 0 {
			lines++
			line = bytes.TrimRight(line, "\r\n")
			switch {
			case tooLong:
				events++
				fail(failure{Line: lines, Reason: reasonLineTooLong, Error: fmt.Sprintf("line is longer than %d bytes", maxLineBytes)})
			case len(bytes.TrimSpace(line)) == 0:
				// Blank lines separate nothing and are not events.
			default:
				events++
				ev, perr := usage.ParseEvent(line)
				if perr != nil {
					reason, field, msg := failureOf(perr)
					fail(failure{Line: lines, Reason: reason, Field: field, Error: msg})
					break
				}
				cur.lines = append(cur.lines, lines)
				cur.events = append(cur.events, ev)
				if len(cur.events) == producer.MaxBatchEntries && !flush() {
					return lines, events, nil
				}
			}
		}
		if rerr != nil {
			if !flush() {
				return lines, events, nil
			}
			if errors.Is(rerr, io.EOF) {
				return lines, events, nil
			}
			return lines, events, rerr
		}
		if ctx.Err() != nil {
			flush()
			return lines, events, nil
		}
	}
}

// readLine reads one line, newline included, keeping at most max bytes of
// it (tooLong reports that the rest was discarded). n is the number of
// bytes consumed. At the end of the input it returns io.EOF, with the
// last line if it had no newline.
func readLine(r *bufio.Reader, max int) (line []byte, tooLong bool, n int, err error) {
	for {
		chunk, err := r.ReadSlice('\n')
		n += len(chunk)
		if !tooLong && len(line)+len(chunk) <= max {
			line = append(line, chunk...)
		} else {
			tooLong, line = true, nil
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return line, tooLong, n, err
	}
}

func (a *app) printSummary(s sendSummary) {
	w := a.stdout
	fmt.Fprintf(w, "sent %d of %d events in %s", s.Sent, s.Events, formatSeconds(s.Seconds))
	if s.Failed > 0 {
		fmt.Fprintf(w, "; %d not sent", s.Failed)
	}
	fmt.Fprintln(w)
	for i, f := range s.Failures {
		if i == maxListedFailures {
			fmt.Fprintf(w, "  ... and %d more (--json lists them all)\n", len(s.Failures)-i)
			break
		}
		msg := f.Error
		if f.Field != "" {
			msg = f.Field + ": " + msg
		}
		fmt.Fprintf(w, "  line %-7d %-22s %s\n", f.Line, f.Reason, msg)
	}
	if len(s.ByReason) > 0 {
		reasons := make([]string, 0, len(s.ByReason))
		for r := range s.ByReason {
			reasons = append(reasons, r)
		}
		sort.Strings(reasons)
		parts := make([]string, len(reasons))
		for i, r := range reasons {
			parts[i] = fmt.Sprintf("%s %d", r, s.ByReason[r])
		}
		fmt.Fprintf(w, "not sent, by reason: %s\n", strings.Join(parts, ", "))
	}
	if s.Interrupted {
		fmt.Fprintf(w, "interrupted after line %d\n", s.Lines)
	}
}

func formatSeconds(s float64) string {
	if s < 10 {
		return fmt.Sprintf("%.2fs", s)
	}
	return fmt.Sprintf("%.0fs", s)
}
