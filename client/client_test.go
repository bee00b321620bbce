package client_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/usage-event-service/usage-event-service/client"
	"github.com/usage-event-service/usage-event-service/client/clienttest"
	"github.com/usage-event-service/usage-event-service/client/local"
	"github.com/usage-event-service/usage-event-service/decision"
	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
	"github.com/usage-event-service/usage-event-service/usage"
)

func TestMain(m *testing.M) { emulator.Main(m) }

// awsConfig loads the configuration as a caller would, from the
// environment emulator.Env points at the emulators. The SDK's retries are
// off: the Runtime Interface Emulator must see each invocation once.
func awsConfig(t *testing.T) aws.Config {
	t.Helper()
	cfg, err := awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithRetryer(func() aws.Retryer { return aws.NopRetryer{} }))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// noChecksum skips the SDK's CRC32 check of responses: DynamoDB Local
// omits the header on error responses (expected ones here: conditional
// failures), and the SDK would log a warning for each.
func noChecksum(o *awsdynamodb.Options) { o.DisableValidateResponseChecksum = true }

// tables creates fresh entitlements and ledger tables in DynamoDB Local
// and returns their store configuration and a Put for the suite.
func tables(t *testing.T) (dynamodb.Config, func(*testing.T, dynamodb.EntitlementItem)) {
	t.Helper()
	emulator.Env(t)
	ctx := context.Background()
	ddb := awsdynamodb.NewFromConfig(awsConfig(t), noChecksum)
	cfg := dynamodb.Config{EntitlementsTable: emulator.UniqueName(t, "ent"), LedgerTable: emulator.UniqueName(t, "ledger")}
	if _, err := dynamodb.CreateEntitlementsTable(ctx, ddb, cfg.EntitlementsTable, dynamodb.DefaultEntitlementKeys); err != nil {
		t.Fatal(err)
	}
	if _, err := dynamodb.CreateLedgerTable(ctx, ddb, cfg.LedgerTable); err != nil {
		t.Fatal(err)
	}
	put := func(t *testing.T, e dynamodb.EntitlementItem) {
		t.Helper()
		if err := dynamodb.PutEntitlement(context.Background(), ddb, cfg.EntitlementsTable, dynamodb.DefaultEntitlementKeys, e); err != nil {
			t.Fatal(err)
		}
	}
	return cfg, put
}

func TestLocalContract(t *testing.T) {
	emulator.SkipShort(t)
	clienttest.Run(t, func(t *testing.T) clienttest.Backend {
		store, put := tables(t)
		c, err := local.New(awsConfig(t), store, noChecksum)
		if err != nil {
			t.Fatal(err)
		}
		return clienttest.Backend{Client: c, Put: put}
	})
}

// startFunction runs the bootstrap under the Runtime Interface Emulator
// with env, and points AWS_ENDPOINT_URL_LAMBDA at it for the test, so
// that clients find it exactly as they find a real endpoint override.
func startFunction(t *testing.T, bootstrap string, env ...string) {
	t.Helper()
	fn, err := emulator.StartLambda(context.Background(), bootstrap, append([]string{"LOG_LEVEL=WARN"}, env...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fn.Stop() })
	t.Setenv("AWS_ENDPOINT_URL_LAMBDA", fn.Endpoint)
}

// rieFunction is the one function name the emulator serves.
const rieFunction = "function"

func TestLambdaContract(t *testing.T) {
	emulator.SkipShort(t)
	bootstrap := emulator.LambdaBootstrap(t)
	clienttest.Run(t, func(t *testing.T) clienttest.Backend {
		store, put := tables(t)
		startFunction(t, bootstrap, "ENTITLEMENTS_TABLE="+store.EntitlementsTable, "USAGE_LEDGER_TABLE="+store.LedgerTable)
		c, err := client.NewLambda(awsConfig(t), rieFunction)
		if err != nil {
			t.Fatal(err)
		}
		return clienttest.Backend{Client: c, Put: put}
	})
}

// A handler error reaches the caller under the emulator only as an
// errorType/errorMessage payload (Lambda also sets FunctionError): a
// *client.FunctionError, never an answer.
func TestLambdaHandlerError(t *testing.T) {
	emulator.SkipShort(t)
	emulator.Env(t)
	startFunction(t, emulator.Binary(t, "./client/testdata/failingfunction"))
	c, err := client.NewLambda(awsConfig(t), rieFunction)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Consume(context.Background(), client.ConsumeRequest{UserID: "u", EntitlementKey: "k", IdempotencyKey: "x"})
	var fe *client.FunctionError
	if !errors.As(err, &fe) || fe.Type != "errorString" || fe.Message != "the handler failed" {
		t.Fatalf("got %T %v, want a *client.FunctionError errorString: the handler failed", err, err)
	}
}

// The real bootstrap without its configuration fails its init: the
// emulator answers 502, an error of the SDK, neither an answer nor a
// rejection.
func TestLambdaFunctionThatCannotStart(t *testing.T) {
	emulator.SkipShort(t)
	emulator.Env(t)
	startFunction(t, emulator.LambdaBootstrap(t), "ENTITLEMENTS_TABLE=", "USAGE_LEDGER_TABLE=")
	c, err := client.NewLambda(awsConfig(t), rieFunction)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Balance(context.Background(), "u", "k")
	var r *client.RejectedError
	if err == nil || errors.As(err, &r) || errors.Is(err, client.ErrRetry) {
		t.Fatalf("got %v, want an invocation error", err)
	}
	t.Logf("a function that cannot start: %v", err)
}

func TestNewLambdaNeedsAFunction(t *testing.T) {
	if _, err := client.NewLambda(aws.Config{}, ""); err == nil {
		t.Error("no error without a function name")
	}
}

// A Local client without a ledger table reads balances and refuses
// writes before touching anything.
func TestLocalWithoutALedgerTable(t *testing.T) {
	emulator.SkipShort(t)
	store, put := tables(t)
	put(t, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Used: &[]usage.Decimal{usage.MustDecimal("2")}[0]})
	store.LedgerTable = ""
	c, err := local.New(awsConfig(t), store, noChecksum)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := c.Balance(context.Background(), "u", "k"); err != nil || b.Used.String() != "2" {
		t.Errorf("balance: %+v, %v", b, err)
	}
	_, err = c.Consume(context.Background(), client.ConsumeRequest{UserID: "u", EntitlementKey: "k", IdempotencyKey: "x"})
	var r *client.RejectedError
	if err == nil || errors.As(err, &r) || errors.Is(err, client.ErrRetry) {
		t.Errorf("consume without a ledger table: %v, want a configuration error", err)
	}
	if _, err := local.New(aws.Config{}, dynamodb.Config{}); err == nil {
		t.Error("no error without an entitlements table")
	}
}

// A store that keeps failing is a RETRY answer: client.ErrRetry, with the
// answer.
func TestLocalRetry(t *testing.T) {
	emulator.SkipShort(t)
	store, put := tables(t)
	put(t, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k"})
	store.LedgerTable = "no-such-ledger"
	c, err := local.New(awsConfig(t), store, noChecksum)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Consume(context.Background(), client.ConsumeRequest{UserID: "u", EntitlementKey: "k", IdempotencyKey: "x"})
	var re *client.RetryError
	if !errors.Is(err, client.ErrRetry) || !errors.As(err, &re) || re.Answer.Status != decision.Retry {
		t.Fatalf("got %T %v, want a *client.RetryError", err, err)
	}
	t.Logf("retry: %v", err)
}
