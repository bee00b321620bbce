package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/usage-event-service/usage-event-service/decision"
	"github.com/usage-event-service/usage-event-service/usage"
)

// InvokeAPI is the part of the Lambda API the client calls
// (lambda:InvokeFunction).
type InvokeAPI interface {
	Invoke(context.Context, *awslambda.InvokeInput, ...func(*awslambda.Options)) (*awslambda.InvokeOutput, error)
}

// Lambda asks the decisions function, one synchronous (RequestResponse)
// Invoke per request.
type Lambda struct {
	core
	api      InvokeAPI
	function string
}

// NewLambda returns a client of the decisions function (a name, a
// qualified name or an ARN), with a Lambda client made from cfg: region,
// credentials, retries and the endpoint (AWS_ENDPOINT_URL_LAMBDA) come
// from it as for any SDK client. optFns adjust that client.
func NewLambda(cfg aws.Config, function string, optFns ...func(*awslambda.Options)) (*Lambda, error) {
	return NewLambdaFromAPI(awslambda.NewFromConfig(cfg, optFns...), function)
}

// NewLambdaFromAPI returns a client of the decisions function that calls
// api.
func NewLambdaFromAPI(api InvokeAPI, function string) (*Lambda, error) {
	if function == "" {
		return nil, errors.New("client: no decisions function name given")
	}
	l := &Lambda{api: api, function: function}
	l.core = core{answer: l.invoke}
	return l, nil
}

func (l *Lambda) invoke(ctx context.Context, _ usage.Event, body []byte) (decision.Answer, error) {
	out, err := l.api.Invoke(ctx, &awslambda.InvokeInput{
		FunctionName:   aws.String(l.function),
		InvocationType: types.InvocationTypeRequestResponse,
		Payload:        body,
	})
	if err != nil {
		return decision.Answer{}, fmt.Errorf("invoke %s: %w", l.function, err)
	}
	return readReply(out.FunctionError, out.Payload)
}

// readReply reads an invocation's payload. A function error shows as
// Lambda's FunctionError (the X-Amz-Function-Error header), or only as an
// errorType/errorMessage payload (the Runtime Interface Emulator reports
// handler errors so); a payload that is no answer at all (a timeout's
// plain text, say) is an error too.
func readReply(functionError *string, payload []byte) (decision.Answer, error) {
	var reply struct {
		decision.Answer
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}
	decodeErr := json.Unmarshal(payload, &reply)
	if functionError != nil || decodeErr == nil && reply.Status == "" && (reply.ErrorType != "" || reply.ErrorMessage != "") {
		fe := &FunctionError{Type: reply.ErrorType, Message: reply.ErrorMessage}
		if fe.Type == "" {
			fe.Type = aws.ToString(functionError)
		}
		if decodeErr != nil || fe.Message == "" {
			fe.Message = short(payload)
		}
		return decision.Answer{}, fe
	}
	if decodeErr != nil || reply.Status == "" {
		return decision.Answer{}, fmt.Errorf("the decisions function answered no decision: %s", short(payload))
	}
	return reply.Answer, nil
}

// short quotes a payload for an error message, cut at 256 bytes.
func short(payload []byte) string {
	const max = 256
	if len(payload) > max {
		return fmt.Sprintf("%q...", payload[:max])
	}
	return fmt.Sprintf("%q", payload)
}
