// Command echo is a minimal Lambda bootstrap for the emulator tests: it
// returns its input, one environment variable (to prove StartLambda's env
// reaches the function) and its pid (to prove Stop kills it).
package main

import (
	"context"
	"encoding/json"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
)

type reply struct {
	Input json.RawMessage `json:"input"`
	Env   string          `json:"env"`
	PID   int             `json:"pid"`
}

func main() {
	lambda.Start(func(_ context.Context, in json.RawMessage) (reply, error) {
		return reply{Input: in, Env: os.Getenv("ECHO_ENV"), PID: os.Getpid()}, nil
	})
}
