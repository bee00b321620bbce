// Command failingfunction is a Lambda function whose handler always
// fails: the client's tests use it to see how a function error reaches a
// caller under the Runtime Interface Emulator.
package main

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(context.Context, json.RawMessage) (any, error) {
		return nil, errors.New("the handler failed")
	})
}
