package playground

import (
	"strings"
	"testing"
	"time"
)

func TestHumanLine(t *testing.T) {
	utc := time.UTC
	for _, c := range []struct {
		name, in, want string
	}{
		{"time, level and message lead; attributes follow in order",
			`{"time":"2026-12-01T19:04:05.123456789Z","level":"INFO","msg":"batch processed","messages":3,"applied":2,"durationMs":12}`,
			`19:04:05.123 INFO  batch processed  messages=3 applied=2 durationMs=12`},
		{"strings with spaces, quotes or '=' are quoted; others bare",
			`{"time":"2026-12-01T19:04:05Z","level":"WARN","msg":"event rejected","userId":"bob","detail":"limit of 5 (used 5)","k":"a=b","q":"say \"hi\"","empty":""}`,
			`19:04:05.000 WARN  event rejected  userId=bob detail="limit of 5 (used 5)" k="a=b" q="say \"hi\"" empty=""`},
		{"objects, arrays, numbers, booleans and null as compact JSON",
			`{"time":"2026-12-01T19:04:05Z","level":"DEBUG","msg":"m","o":{"a": 1},"l":[1, "x"],"n":1.50,"b":true,"z":null}`,
			`19:04:05.000 DEBUG m  o={"a":1} l=[1,"x"] n=1.50 b=true z=null`},
		{"the time is shown in the given zone",
			`{"time":"2026-12-01T23:30:00+01:00","level":"INFO","msg":"m"}`,
			`22:30:00.000 INFO  m`},
		{"an unparsable time stays an attribute",
			`{"time":"yesterday","level":"ERROR","msg":"m"}`,
			`ERROR m  time=yesterday`},
		{"a line without level or message keeps its attributes",
			`{"a":"b"}`,
			`a=b`},
		{"control characters are quoted", `{"msg":"m","x":"a\nb"}`, `m  x="a\nb"`},
		{"not JSON: unchanged", `panic: runtime error`, `panic: runtime error`},
		{"a JSON array: unchanged", `[1,2]`, `[1,2]`},
		{"two objects on one line: unchanged", `{"msg":"a"} {"msg":"b"}`, `{"msg":"a"} {"msg":"b"}`},
		{"truncated JSON: unchanged", `{"msg":"a"`, `{"msg":"a"`},
		{"empty line: unchanged", ``, ``},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := humanLine([]byte(c.in), utc); got != c.want {
				t.Errorf("humanLine(%s)\n got %s\nwant %s", c.in, got, c.want)
			}
		})
	}
}

func TestCopyHumanKeepsEveryLine(t *testing.T) {
	in := `{"time":"2026-12-01T19:04:05Z","level":"INFO","msg":"worker started","pollers":4}` + "\n" +
		"not json\n" +
		`{"time":"2026-12-01T19:04:06Z","level":"INFO","msg":"worker stopped"}` // no final newline
	var out strings.Builder
	if err := copyHuman(&out, strings.NewReader(in), time.UTC); err != nil {
		t.Fatal(err)
	}
	want := "19:04:05.000 INFO  worker started  pollers=4\nnot json\n19:04:06.000 INFO  worker stopped\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:4566/000000000000/usage-event-queue": "http://127.0.0.1:4566/000000000000/usage-event-queue",
		"/tmp/usage-playground-1":                              "/tmp/usage-playground-1",
		"/tmp/my dir":                                          "'/tmp/my dir'",
		"it's":                                                 `'it'\''s'`,
		"$HOME":                                                "'$HOME'",
		"":                                                     "''",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestExportsListTheSDKSettingsThenTheServicesThenPATH(t *testing.T) {
	got := exports(map[string]string{
		"USAGE_EVENT_QUEUE_URL": "http://q", "AWS_REGION": "us-east-1", "ZZZ_EXTRA": "x y",
		"AWS_ENDPOINT_URL_SQS": "http://127.0.0.1:2", "ENTITLEMENTS_TABLE": "entitlements",
	}, "/tmp/pg 1")
	want := "export AWS_REGION=us-east-1\n" +
		"export AWS_ENDPOINT_URL_SQS=http://127.0.0.1:2\n" +
		"export ENTITLEMENTS_TABLE=entitlements\n" +
		"export USAGE_EVENT_QUEUE_URL=http://q\n" +
		"export ZZZ_EXTRA='x y'\n" +
		"export PATH='/tmp/pg 1':\"$PATH\"\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
