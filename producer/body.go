package producer

import (
	"fmt"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/usage-event-service/usage-event-service/usage"
)

// Body is an event's SQS message body: its wire form (usage.Event's
// MarshalJSON), with the characters SQS does not take raw escaped.
func Body(ev usage.Event) ([]byte, error) {
	body, err := ev.MarshalJSON()
	if err != nil {
		return nil, err
	}
	return escapeForSQS(body), nil
}

// escapeForSQS escapes the characters of a JSON body that SQS does not
// take as they are. SQS rejects a body containing U+FFFE or U+FFFF
// (InvalidMessageContents), although they are valid UTF-8 that the
// contract accepts; and some SQS implementations, fauxqs among them,
// reject every character above U+FFFF (emoji), which AWS accepts. Such
// characters occur only inside JSON strings, where a \u escape (a
// surrogate pair above U+FFFF) denotes the same character, so the body
// parses to exactly the same event.
func escapeForSQS(body []byte) []byte {
	var out []byte
	last := 0
	for i := 0; i < len(body); {
		if body[i] < 0xEF { // ASCII, a continuation byte, or a lead byte below U+F000
			i++
			continue
		}
		r, size := utf8.DecodeRune(body[i:])
		if r != 0xFFFE && r != 0xFFFF && r < 0x10000 {
			i += size
			continue
		}
		if out == nil {
			out = make([]byte, 0, len(body)+64)
		}
		out = append(out, body[last:i]...)
		if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
			out = fmt.Appendf(out, `\u%04x\u%04x`, r1, r2)
		} else {
			out = fmt.Appendf(out, `\u%04x`, r)
		}
		i += size
		last = i
	}
	if out == nil {
		return body
	}
	return append(out, body[last:]...)
}
