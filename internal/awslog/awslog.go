// Package awslog routes the AWS SDK's own log lines into slog, so that
// every line the service writes is structured JSON.
package awslog

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/aws/smithy-go/logging"
)

// Logger adapts slog to the SDK's logging.Logger.
type Logger struct{ *slog.Logger }

// Logf implements logging.Logger. The SDK warns when it closes an error
// response before reading it whole (it does so for every conditional
// check failure, an expected outcome here), so that one is debug noise.
func (l Logger) Logf(c logging.Classification, format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	level := slog.LevelInfo
	switch {
	case strings.HasPrefix(msg, "failed to close HTTP response body"):
		level = slog.LevelDebug
	case c == logging.Warn:
		level = slog.LevelWarn
	case c == logging.Debug:
		level = slog.LevelDebug
	}
	l.Log(context.Background(), level, msg, "component", "aws-sdk")
}
