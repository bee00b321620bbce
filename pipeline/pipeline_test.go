package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/usage-event-service/usage-event-service/pipeline"
	"github.com/usage-event-service/usage-event-service/usage"
)

func msg(id, body string) pipeline.Message {
	return pipeline.Message{ID: id, Body: body, ReceiveCount: 1}
}

func statusText(rs []pipeline.Result) string {
	var s []string
	for _, r := range rs {
		if r.Status == usage.Rejected {
			s = append(s, string(r.Reason()))
		} else {
			s = append(s, string(r.Status))
		}
	}
	return strings.Join(s, " ")
}

type fakeSender struct {
	fail    bool
	letters []pipeline.DeadLetter
}

func (f *fakeSender) SendDeadLetters(_ context.Context, l []pipeline.DeadLetter) []error {
	errs := make([]error, len(l))
	for i := range l {
		if f.fail {
			errs[i] = errors.New("queue unavailable")
		}
	}
	f.letters = append(f.letters, l...)
	return errs
}

func fixed(results ...pipeline.Result) pipeline.Handler {
	return func(context.Context, []pipeline.Message) []pipeline.Result { return results }
}

func rejected(reason usage.Reason) pipeline.Result {
	return pipeline.Result{Outcome: usage.Outcome{Status: usage.Rejected, Err: &usage.RejectionError{Reason: reason, Message: "m"}}}
}

func TestDeadLetters(t *testing.T) {
	transient := pipeline.Result{Outcome: usage.Outcome{Status: usage.Retry, Err: errors.New("throttled")}}
	applied := pipeline.Result{Outcome: usage.Outcome{Status: usage.Applied}}
	tests := []struct {
		name     string
		fail     bool
		wantDone []bool
		wantSent int
	}{
		{"rejections leave the queue once dead-lettered", false, []bool{true, true, false}, 1},
		{"a failed send keeps the message for SQS to retry", true, []bool{true, false, false}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &fakeSender{fail: tt.fail}
			h := pipeline.Chain(fixed(applied, rejected(usage.ReasonLimitExceeded), transient), pipeline.DeadLetters(s, nil))
			got := h(context.Background(), []pipeline.Message{msg("1", ""), msg("2", "body"), msg("3", "")})
			for i, r := range got {
				if r.Done() != tt.wantDone[i] {
					t.Errorf("message %d done=%v, want %v", i+1, r.Done(), tt.wantDone[i])
				}
			}
			if len(s.letters) != tt.wantSent || s.letters[0].Reason != usage.ReasonLimitExceeded || s.letters[0].Message.Body != "body" {
				t.Errorf("sent %+v", s.letters)
			}
		})
	}
}

func TestFIFOOrderHoldsBackLaterMessagesOfAFailedGroup(t *testing.T) {
	ok := pipeline.Result{Outcome: usage.Outcome{Status: usage.Applied}}
	fail := pipeline.Result{Outcome: usage.Outcome{Status: usage.Retry, Err: errors.New("x")}}
	h := pipeline.Chain(fixed(ok, fail, ok, ok), pipeline.FIFOOrder())
	msgs := []pipeline.Message{{ID: "1", GroupID: "a"}, {ID: "2", GroupID: "a"}, {ID: "3", GroupID: "a"}, {ID: "4", GroupID: "b"}}
	got := h(context.Background(), msgs)
	if statusText(got) != "APPLIED RETRY RETRY APPLIED" || !errors.Is(got[2].Err, pipeline.ErrFIFOBlocked) {
		t.Errorf("got %s", statusText(got))
	}
}

func TestLoggingNamesEveryMessageThatWasNotApplied(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	applied := pipeline.Result{MessageID: "m1", Outcome: usage.Outcome{Status: usage.Applied}}
	rej := rejected(usage.ReasonLimitExceeded)
	rej.MessageID = "m2"
	h := pipeline.Chain(fixed(applied, rej), pipeline.Logging(logger))
	h(pipeline.WithRequestID(context.Background(), "req-1"), []pipeline.Message{msg("m1", ""), msg("m2", "")})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want one rejection line and one summary, got:\n%s", buf.String())
	}
	var rec map[string]any
	json.Unmarshal([]byte(lines[0]), &rec)
	if rec["messageId"] != "m2" || rec["reason"] != "LIMIT_EXCEEDED" || rec["requestId"] != "req-1" || rec["outcome"] != "REJECTED" {
		t.Errorf("rejection line %v", rec)
	}
	json.Unmarshal([]byte(lines[1]), &rec)
	if rec["msg"] != "batch processed" || rec["applied"] != float64(1) || rec["rejected"] != float64(1) {
		t.Errorf("summary line %v", rec)
	}
}

func TestRecoverTurnsAPanicOfTheWholeHandlerIntoRetries(t *testing.T) {
	h := pipeline.Chain(func(context.Context, []pipeline.Message) []pipeline.Result { panic("boom") }, pipeline.Recover())
	got := h(context.Background(), []pipeline.Message{msg("1", ""), msg("2", "")})
	if statusText(got) != "RETRY RETRY" || got[1].MessageID != "2" || !errors.Is(got[0].Err, pipeline.ErrPanic) || len(pipeline.Panics(got)) != 1 {
		t.Errorf("got %s %+v", statusText(got), got)
	}
}

func TestLoggingWritesEachPanicOnceWithItsStack(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	h := pipeline.Chain(func(context.Context, []pipeline.Message) []pipeline.Result { panic("boom") }, pipeline.Logging(logger), pipeline.Recover())
	h(context.Background(), []pipeline.Message{msg("m1", ""), msg("m2", "")})
	var panics, summaries int
	for line := range strings.Lines(buf.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not JSON: %s", line)
		}
		switch rec["msg"] {
		case "panic while processing; its messages will be retried":
			panics++
			if rec["level"] != "ERROR" || rec["panic"] != "boom" || !strings.Contains(rec["stack"].(string), "runtime/debug.Stack") || fmt.Sprint(rec["messageIds"]) != "[m1 m2]" {
				t.Errorf("panic line %v", rec)
			}
		case "batch processed":
			summaries++
			if rec["panics"] != float64(1) || rec["retried"] != float64(2) {
				t.Errorf("summary %v", rec)
			}
		}
	}
	if panics != 1 || summaries != 1 {
		t.Errorf("%d panic lines and %d summaries, want 1 and 1:\n%s", panics, summaries, buf.String())
	}
}

// scripted is a core handler whose result for a message is named by its
// body: "applied", "rejected", "retry", or "panic" (the whole handler).
func scripted(_ context.Context, msgs []pipeline.Message) []pipeline.Result {
	out := make([]pipeline.Result, len(msgs))
	for i, m := range msgs {
		out[i].MessageID = m.ID
		switch strings.TrimSuffix(m.Body, "+dlq-down") {
		case "applied":
			out[i].Outcome = usage.Outcome{Status: usage.Applied}
		case "rejected":
			out[i] = rejected(usage.ReasonLimitExceeded)
			out[i].MessageID = m.ID
		case "panic":
			panic("core panicked")
		default:
			out[i].Outcome = usage.Outcome{Status: usage.Retry, Err: errors.New("throttled")}
		}
	}
	return out
}

// bodySender fails the dead letters whose body ends in "+dlq-down".
type bodySender struct{ sent []string }

func (s *bodySender) SendDeadLetters(_ context.Context, letters []pipeline.DeadLetter) []error {
	errs := make([]error, len(letters))
	for i, l := range letters {
		if strings.HasSuffix(l.Message.Body, "+dlq-down") {
			errs[i] = errors.New("dead-letter queue unavailable")
		} else {
			s.sent = append(s.sent, l.Message.ID)
		}
	}
	return errs
}

// TestNewOrdersTheChainForFIFOCorrectness pins the consequences of New's
// order on one FIFO batch: a dead-lettered message is done and holds
// nothing back; a message after a failed one (a retry, or a rejection
// whose dead-lettering failed) in its group is held back; logging and
// metrics see those final outcomes; a panic of the core is RETRY for all.
func TestNewOrdersTheChainForFIFOCorrectness(t *testing.T) {
	type m struct{ id, group, body string }
	in := []m{
		{"a1", "a", "rejected"}, {"a2", "a", "applied"}, // dead-lettered: holds nothing back
		{"b1", "b", "retry"}, {"b2", "b", "rejected"}, {"b3", "b", "applied"}, // b2 exempt, b3 held back
		{"c1", "c", "rejected+dlq-down"}, {"c2", "c", "applied"}, // not dead-lettered: holds back
		{"s1", "", "applied"},
	}
	msgs := make([]pipeline.Message, len(in))
	for i, x := range in {
		msgs[i] = pipeline.Message{ID: x.id, GroupID: x.group, Body: x.body}
	}
	var logs bytes.Buffer
	var seen []pipeline.Result
	record := func(next pipeline.Handler) pipeline.Handler {
		return func(ctx context.Context, msgs []pipeline.Message) []pipeline.Result {
			results := next(ctx, msgs)
			seen = slices.Clone(results) // as they were when it recorded them
			return results
		}
	}
	sender := &bodySender{}
	h := pipeline.New(scripted, pipeline.Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil)), Metrics: record, DeadLetters: sender})
	got := h(context.Background(), msgs)

	wantDone := map[string]bool{"a1": true, "a2": true, "b2": true, "s1": true}
	for i, r := range got {
		if r.Done() != wantDone[in[i].id] {
			t.Errorf("%s (%s): done %v, want %v (%s %v)", in[i].id, in[i].body, r.Done(), wantDone[in[i].id], r.Status, r.Err)
		}
	}
	for _, i := range []int{4, 6} {
		if !errors.Is(got[i].Err, pipeline.ErrFIFOBlocked) {
			t.Errorf("%s: cause %v, want ErrFIFOBlocked", in[i].id, got[i].Err)
		}
	}
	if fmt.Sprint(sender.sent) != "[a1 b2]" {
		t.Errorf("dead-lettered %v, want [a1 b2]", sender.sent)
	}
	if len(seen) != len(msgs) || seen[4].Status != usage.Retry || !seen[0].DeadLettered {
		t.Errorf("the metrics middleware saw %s, not the final outcomes", statusText(seen))
	}
	if !strings.Contains(logs.String(), `"messageId":"b3","outcome":"RETRY"`) || !strings.Contains(logs.String(), `"deadLettered":2`) {
		t.Errorf("the log does not show the final outcomes:\n%s", logs.String())
	}

	msgs[7].Body = "panic"
	got = h(context.Background(), msgs)
	if len(got) != len(msgs) || len(pipeline.Panics(got)) != 1 || got[0].Done() || len(pipeline.Panics(seen)) != 1 {
		t.Errorf("a panicking core: %s", statusText(got))
	}
}
