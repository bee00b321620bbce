package client

import (
	"context"

	"github.com/usage-event-service/usage-event-service/decision"
	"github.com/usage-event-service/usage-event-service/usage"
)

// Local decides in this process: package client/local makes one over the
// service's DynamoDB tables, with the service's own store and decision
// engine, for a service that holds the tables' permissions itself
// (dynamodb.IAMActions) and would rather not pay for an invocation. Its
// decisions race safely with the service's, as two consumers of the queue
// do. It lives apart so that a caller of the decisions function alone
// does not compile in the DynamoDB store.
type Local struct{ core }

// Answerer answers one request, given as the event and its body in the
// message contract's JSON form, in this process.
type Answerer func(ctx context.Context, ev usage.Event, body []byte) (decision.Answer, error)

// NewLocalAnswerer returns a Local client whose requests a answers.
func NewLocalAnswerer(a Answerer) *Local { return &Local{core{answer: answerer(a)}} }
