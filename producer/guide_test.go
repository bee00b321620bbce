package producer_test

import (
	"io"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/usage-event-service/usage-event-service/usage"
)

const guidePath = "../docs/usage-events-sqs.md"

// goBlocks returns the ```go fenced blocks of a markdown document.
func goBlocks(t *testing.T, path string) []string {
	t.Helper()
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)```go\n(.*?)```\n").FindAllStringSubmatch(string(doc), -1) {
		blocks = append(blocks, m[1])
	}
	return blocks
}

// exampleParts returns the import declaration of example_test.go and the
// body of ExamplePublisher_Publish, unindented by one tab.
func exampleParts(t *testing.T) (imports, body string) {
	t.Helper()
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	imports = regexp.MustCompile(`(?s)\nimport \(\n.*?\n\)\n`).FindString(s)
	start := strings.Index(s, "func ExamplePublisher_Publish() {\n")
	if imports == "" || start < 0 {
		t.Fatal("example_test.go has no import block or no ExamplePublisher_Publish")
	}
	rest := s[start+len("func ExamplePublisher_Publish() {\n"):]
	rest = rest[:strings.Index(rest, "\n}\n")+1]
	var lines []string
	for _, l := range strings.SplitAfter(rest, "\n") {
		lines = append(lines, strings.TrimPrefix(l, "\t"))
	}
	return strings.TrimPrefix(imports, "\n"), strings.Join(lines, "")
}

// The guide's Go code is compiled and run: it must be exactly the
// example's imports and body.
func TestGuideGoSnippetIsTheExample(t *testing.T) {
	blocks := goBlocks(t, guidePath)
	imports, body := exampleParts(t)
	if len(blocks) != 2 {
		t.Fatalf("the guide has %d Go blocks, want 2 (imports, then the example's body)", len(blocks))
	}
	if blocks[0] != imports {
		t.Errorf("the guide's imports differ from example_test.go's:\n--- guide\n%s--- example\n%s", blocks[0], imports)
	}
	if blocks[1] != body {
		t.Errorf("the guide's Go snippet differs from ExamplePublisher_Publish:\n--- guide\n%s--- example\n%s", blocks[1], body)
	}
}

func TestGuideExampleRuns(t *testing.T) {
	_, c := awsEnv(t)
	url := newQueue(t, c, "", nil)
	t.Setenv("USAGE_EVENT_QUEUE_URL", url)

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	ExamplePublisher_Publish()
	os.Stdout = stdout
	w.Close()
	out, _ := io.ReadAll(r)
	if want := "sent with key invoice-7781:line-3\n2 results\n"; string(out) != want {
		t.Errorf("the example printed %q, want %q", out, want)
	}

	got := receiveAll(t, c, url, 3)
	keys := map[string]string{}
	for _, m := range got {
		ev, err := usage.ParseEvent([]byte(aws.ToString(m.Body)))
		if err != nil {
			t.Fatal(err)
		}
		keys[ev.UserID+"/"+ev.EntitlementKey] = ev.IdempotencyKey
		if ev.EntitlementKey == "api-calls" && (ev.Amount.String() != "2.5" || string(ev.Metadata) != `{"requestId":"req-42"}`) {
			t.Errorf("the guide's event arrived as %s", aws.ToString(m.Body))
		}
	}
	if keys["user-123/api-calls"] != "invoice-7781:line-3" || !isUUIDv7(keys["user-123/exports"]) || !isUUIDv7(keys["user-456/exports"]) {
		t.Errorf("keys %v: want the explicit key and two generated UUIDv7 keys", keys)
	}
}
