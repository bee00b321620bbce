package client_test

import (
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
	"github.com/usage-event-service/usage-event-service/usage"
)

// readmeSection is the text of the README's "### The Go client", up to
// the next heading.
func readmeSection(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(doc)
	start := strings.Index(s, "\n### The Go client\n")
	if start < 0 {
		t.Fatal(`README.md has no "### The Go client"`)
	}
	s = s[start+1:]
	if end := regexp.MustCompile("\n#{1,3} ").FindStringIndex(s[1:]); end != nil {
		s = s[:end[0]+1]
	}
	return s
}

// exampleParts returns the import declaration of example_test.go and the
// body of ExampleNewLambda, unindented by one tab.
func exampleParts(t *testing.T) (imports, body string) {
	t.Helper()
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	imports = regexp.MustCompile(`(?s)\nimport \(\n.*?\n\)\n`).FindString(s)
	const head = "func ExampleNewLambda() {\n"
	start := strings.Index(s, head)
	if imports == "" || start < 0 {
		t.Fatal("example_test.go has no import block or no ExampleNewLambda")
	}
	rest := s[start+len(head):]
	rest = rest[:strings.Index(rest, "\n}\n")+1]
	var lines []string
	for _, l := range strings.SplitAfter(rest, "\n") {
		lines = append(lines, strings.TrimPrefix(l, "\t"))
	}
	return strings.TrimPrefix(imports, "\n"), strings.Join(lines, "")
}

// The README's Go code is compiled and run: it must be exactly the
// example's imports and body.
func TestREADMESnippetIsTheExample(t *testing.T) {
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)```go\n(.*?)```\n").FindAllStringSubmatch(readmeSection(t), -1) {
		blocks = append(blocks, m[1])
	}
	imports, body := exampleParts(t)
	if len(blocks) != 2 {
		t.Fatalf("the README's Go client section has %d Go blocks, want 2 (imports, then the example's body)", len(blocks))
	}
	if blocks[0] != imports {
		t.Errorf("the README's imports differ from example_test.go's:\n--- README\n%s--- example\n%s", blocks[0], imports)
	}
	if blocks[1] != body {
		t.Errorf("the README's Go snippet differs from ExampleNewLambda:\n--- README\n%s--- example\n%s", blocks[1], body)
	}
}

func TestExampleRuns(t *testing.T) {
	emulator.SkipShort(t)
	store, put := tables(t)
	limit := usage.MustDecimal("10")
	put(t, dynamodb.EntitlementItem{UserID: "user-123", EntitlementKey: "api-calls", Limit: &limit, ResetPeriod: usage.ResetMonthly})
	startFunction(t, emulator.LambdaBootstrap(t), "ENTITLEMENTS_TABLE="+store.EntitlementsTable, "USAGE_LEDGER_TABLE="+store.LedgerTable)
	t.Setenv("DECISIONS_FUNCTION", rieFunction)

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	ExampleNewLambda()
	os.Stdout = stdout
	w.Close()
	out, _ := io.ReadAll(r)
	next := usage.NextPeriodStart(usage.ResetMonthly, nil, time.Now()).Format("2006-01-02")
	if want := "APPLIED 2.5\nrefunded 2.5\nused 0 of 10 until " + next + "\n"; string(out) != want {
		t.Errorf("the example printed %q, want %q", out, want)
	}
}
