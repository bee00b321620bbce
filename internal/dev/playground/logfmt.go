package playground

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// humanLine rewrites one of the worker's JSON log lines (slog's JSON handler:
// time, level, msg, then attributes in order) for a person at a terminal:
//
//	19:04:05.123 WARN  event rejected  messageId=3f… reason=LIMIT_EXCEEDED userId=bob
//
// The time is shown in loc. A line that is not such an object (a panic, a
// line of another format) is returned unchanged, so nothing is ever hidden.
func humanLine(line []byte, loc *time.Location) string {
	attrs, ok := decodeObject(line)
	if !ok {
		return string(line)
	}
	var head, tail []string
	var when, level, msg string
	for _, a := range attrs {
		switch {
		case a.key == "time" && when == "":
			if t, err := time.Parse(time.RFC3339Nano, unquoted(a.value)); err == nil {
				when = t.In(loc).Format("15:04:05.000")
				continue
			}
		case a.key == "level" && level == "":
			level = unquoted(a.value)
			continue
		case a.key == "msg" && msg == "":
			msg = unquoted(a.value)
			continue
		}
		tail = append(tail, a.key+"="+display(a.value))
	}
	if when != "" {
		head = append(head, when)
	}
	if level != "" {
		head = append(head, padRight(level, 5))
	}
	if msg != "" {
		head = append(head, msg)
	}
	out := strings.Join(head, " ")
	if len(tail) > 0 {
		if out != "" {
			out += "  "
		}
		out += strings.Join(tail, " ")
	}
	return out
}

type attr struct {
	key   string
	value json.RawMessage
}

// decodeObject reads a single JSON object, keeping its members in order.
func decodeObject(line []byte) ([]attr, bool) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] != '{' {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	var out []attr
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		key, ok := tok.(string)
		if !ok {
			return nil, false
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		out = append(out, attr{key, v})
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false // more than one value on the line
	}
	return out, true
}

// unquoted is a JSON string's text, or the raw JSON of anything else.
func unquoted(v json.RawMessage) string {
	if s, ok := jsonString(v); ok {
		return s
	}
	return string(v)
}

// jsonString decodes v if it is a JSON string (null is not).
func jsonString(v json.RawMessage) (string, bool) {
	var s string
	if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

// display is a value as key=value shows it: strings bare unless they would
// be ambiguous (empty, spaces, quotes, '='), everything else as compact JSON.
func display(v json.RawMessage) string {
	s, ok := jsonString(v)
	if !ok {
		var buf bytes.Buffer
		if json.Compact(&buf, v) != nil {
			return string(v)
		}
		return buf.String()
	}
	if s == "" || strings.ContainsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || r == '"' || r == '=' || !unicode.IsPrint(r)
	}) {
		return strconv.Quote(s)
	}
	return s
}

func padRight(s string, n int) string {
	if len(s) >= n {
		return s
	}
	return s + strings.Repeat(" ", n-len(s))
}

// copyHuman copies r to w line by line through humanLine until r ends.
func copyHuman(w io.Writer, r io.Reader, loc *time.Location) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		if _, err := io.WriteString(w, humanLine(sc.Bytes(), loc)+"\n"); err != nil {
			return err
		}
	}
	return sc.Err()
}
