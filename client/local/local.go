// Package local is the in-process implementation of client.Client: it
// decides against the service's DynamoDB tables with the service's own
// store, protocol and decision engine (see client.Local).
package local

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/usage-event-service/usage-event-service/client"
	"github.com/usage-event-service/usage-event-service/decision"
	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/metering"
	"github.com/usage-event-service/usage-event-service/usage"
)

// New returns an in-process client with a DynamoDB client made from cfg
// (optFns adjust it). store names the tables: EntitlementsTable is
// required, LedgerTable too for every request but a balance; a zero Keys is
// dynamodb.DefaultEntitlementKeys, and the other fields take the store's
// defaults. Use the same key layout and DEDUP_RETENTION as the service.
func New(cfg aws.Config, store dynamodb.Config, optFns ...func(*awsdynamodb.Options)) (*client.Local, error) {
	return NewFromClient(awsdynamodb.NewFromConfig(cfg, optFns...), store)
}

// NewFromClient is New with a DynamoDB client of the caller's.
func NewFromClient(c dynamodb.Client, store dynamodb.Config) (*client.Local, error) {
	if store.EntitlementsTable == "" {
		return nil, errors.New("client: no entitlements table given")
	}
	engine := &metering.Decisions{Store: metering.Writer{Store: dynamodb.NewStore(c, store)}, Now: store.Now}
	ledger := store.LedgerTable != ""
	return client.NewLocalAnswerer(func(ctx context.Context, ev usage.Event, body []byte) (decision.Answer, error) {
		if !ledger && !ev.Is(usage.OperationBalance) {
			return decision.Answer{}, errNoLedger
		}
		// The function's own path: the same parsing, defaults and rules.
		return engine.Handle(ctx, body), nil
	}), nil
}

var errNoLedger = errors.New("client: no ledger table given: a Local client without one only reads balances")
