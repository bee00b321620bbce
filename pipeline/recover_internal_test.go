package pipeline

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/usage-event-service/usage-event-service/usage"
)

// TestRetryOnPanicMarksOnlyItsIndexes: deferred in a goroutine, it stops
// the panic there and marks exactly the results of that goroutine.
func TestRetryOnPanicMarksOnlyItsIndexes(t *testing.T) {
	results := make([]Result, 4)
	for i := range results {
		results[i].Outcome = usage.Outcome{Status: usage.Applied}
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		defer RetryOnPanic(results, []int{1, 3})
		panic(errors.New("store bug"))
	})
	wg.Go(func() {
		defer RetryOnPanic(results, []int{0})
		results[0].Outcome = usage.Outcome{Status: usage.Duplicate} // no panic: left as it is
	})
	wg.Wait()
	var got []string
	for _, r := range results {
		got = append(got, string(r.Status))
	}
	if strings.Join(got, " ") != "DUPLICATE RETRY APPLIED RETRY" {
		t.Fatalf("got %v", got)
	}
	var p *PanicError
	if !errors.As(results[1].Err, &p) || results[3].Err != results[1].Err || !errors.Is(p, ErrPanic) || p.Error() != "panic: store bug" {
		t.Errorf("causes %v, %v", results[1].Err, results[3].Err)
	}
	if !strings.Contains(string(p.Stack), "TestRetryOnPanicMarksOnlyItsIndexes") {
		t.Errorf("stack lacks the panicking function:\n%s", p.Stack)
	}
}
