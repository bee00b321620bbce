package dynamodb_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/metering"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/pipeline"
	"github.com/usage-event-service/usage-event-service/usage"
)

// These tests pin defects an outside review found in the write path.
// They use only the pipeline's Processor over the DynamoDB store, so each
// ran (and failed) against the store as it was before its fix.

// consumer is one process: a Processor over its own Store (own cache),
// with a settable clock.
type consumer struct {
	e   *env
	p   *metering.Processor
	now time.Time
}

func (e *env) consumer() *consumer {
	c := &consumer{e: e, now: e.now}
	c.p = &metering.Processor{Store: e.store(), Now: func() time.Time { return c.now }}
	return c
}

// send processes one batch of (amount) events for u/k and returns their outcomes.
func (c *consumer) send(t *testing.T, amounts ...string) string {
	t.Helper()
	msgs := make([]pipeline.Message, len(amounts))
	for i, a := range amounts {
		id := fmt.Sprintf("%s-%d-%d", t.Name(), time.Now().UnixNano(), i)
		msgs[i] = pipeline.Message{ID: id, Body: fmt.Sprintf(`{"userId":"u","entitlementKey":"k","amount":%s}`, a), ReceiveCount: 1}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var s []string
	for _, r := range c.p.Handle(ctx, msgs) {
		if r.Status == usage.Rejected {
			s = append(s, string(r.Reason()))
		} else {
			s = append(s, string(r.Status))
		}
	}
	return strings.Join(s, " ")
}

// setUsed writes used behind the consumers' backs, as access-service may.
func (e *env) setUsed(t *testing.T, v types.AttributeValue) {
	t.Helper()
	_, err := e.client.UpdateItem(context.Background(), &awsdynamodb.UpdateItemInput{
		TableName: aws.String(e.entitlements),
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: "USER#u"}, "sk": &types.AttributeValueMemberS{Value: "ENTITLEMENT#k"},
		},
		UpdateExpression:          aws.String("SET #u = :u"),
		ExpressionAttributeNames:  map[string]string{"#u": "used"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":u": v},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (e *env) usedIs(t *testing.T, want string) {
	t.Helper()
	if got := e.get(t, "u", "k").Used; got.Cmp(usage.MustDecimal(want)) != 0 {
		t.Errorf("used %s, want %s", got, want)
	}
}

// Defect 1: a permanent ValidationError (access-service wrote used as a
// string on a cached unlimited entitlement) was retried forever with the
// stale cache: RETRY on every delivery. A fresh process says
// INVALID_ENTITLEMENT, and so must a cached one.
func TestUsedTurnedIntoAStringIsInvalidEntitlementNotRetry(t *testing.T) {
	e := newEnv(t, dynamodb.DefaultEntitlementKeys)
	e.put(t, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k"})
	c := e.consumer()
	if got := c.send(t, "1"); got != "APPLIED" {
		t.Fatal(got)
	}
	e.setUsed(t, &types.AttributeValueMemberS{Value: "6"})
	if got := c.send(t, "1"); got != "INVALID_ENTITLEMENT" {
		t.Errorf("cached consumer: %s, want INVALID_ENTITLEMENT", got)
	}
	if got := e.consumer().send(t, "1"); got != "INVALID_ENTITLEMENT" {
		t.Errorf("fresh consumer: %s, want INVALID_ENTITLEMENT", got)
	}
}

// Defect 1, second form: a concurrent writer makes the stored sum need
// more than 38 digits, so DynamoDB refuses the increment the cached state
// allowed. The store must re-read and decide on what is there.
func TestASumBeyond38DigitsAfterAConcurrentWriteIsRejectedNotRetried(t *testing.T) {
	e := newEnv(t, dynamodb.DefaultEntitlementKeys)
	e.put(t, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k"})
	c := e.consumer()
	if got := c.send(t, "1"); got != "APPLIED" {
		t.Fatal(got)
	}
	e.setUsed(t, &types.AttributeValueMemberN{Value: strings.Repeat("9", 38)})
	if got := c.send(t, "0.5", "0.25"); got != "INVALID_AMOUNT INVALID_AMOUNT" {
		t.Errorf("got %s, want INVALID_AMOUNT INVALID_AMOUNT", got)
	}
	e.usedIs(t, strings.Repeat("9", 38))
}

// Defect 2: each running total fits in 38 digits, their delta does not;
// one by one both apply, so coalesced they must too.
func TestACoalescedDeltaWiderThan38DigitsApplies(t *testing.T) {
	e := newEnv(t, dynamodb.DefaultEntitlementKeys)
	e.put(t, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Used: dp("1E-18")})
	if got := e.consumer().send(t, "9E-18", "1E20"); got != "APPLIED APPLIED" {
		t.Errorf("got %s, want APPLIED APPLIED", got)
	}
	e.usedIs(t, "100000000000000000000.00000000000000001")
}

// Defect 3: a precision rejection was decided from used but not pinned
// to it. access-service resets used between the consumer's read and its
// write: the event must be decided again, and now applies.
func TestAPrecisionRejectionRestsOnExactlyTheObservedUsed(t *testing.T) {
	e := newEnv(t, dynamodb.DefaultEntitlementKeys)
	e.put(t, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Used: dp("1E30")})
	c := e.consumer()
	if got := c.send(t, "1"); got != "APPLIED" { // caches used = 1E30 + 1
		t.Fatal(got)
	}
	e.setUsed(t, &types.AttributeValueMemberN{Value: "0"})
	if got := c.send(t, "1E-10", "1"); got != "APPLIED APPLIED" {
		t.Errorf("got %s, want APPLIED APPLIED (used was reset to 0)", got)
	}
	e.usedIs(t, "1.0000000001")
}

// Defect 4: a reset did not pin the type of used, so a used that turned
// into a string mid-flight was silently overwritten.
func TestAResetDoesNotOverwriteAUsedThatIsNoLongerANumber(t *testing.T) {
	e := newEnv(t, dynamodb.DefaultEntitlementKeys)
	e.put(t, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Limit: dp("10"), Used: dp("5"),
		ResetPeriod: usage.ResetMonthly, PeriodStart: tp("2026-10-01T00:00:00Z")})
	c := e.consumer()
	c.now = time.Date(2026, 10, 20, 0, 0, 0, 0, time.UTC)
	if got := c.send(t, "1"); got != "APPLIED" { // caches October's state
		t.Fatal(got)
	}
	e.setUsed(t, &types.AttributeValueMemberS{Value: "6"})
	c.now = time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC) // November: a reset
	if got := c.send(t, "1"); got != "INVALID_ENTITLEMENT" {
		t.Errorf("got %s, want INVALID_ENTITLEMENT", got)
	}
	out, err := e.client.GetItem(context.Background(), &awsdynamodb.GetItemInput{
		TableName: aws.String(e.entitlements),
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: "USER#u"}, "sk": &types.AttributeValueMemberS{Value: "ENTITLEMENT#k"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := out.Item["used"].(*types.AttributeValueMemberS); !ok || s.Value != "6" {
		t.Errorf("used is now %#v, want the string it was", out.Item["used"])
	}
}

// Defect 5: the hashed ledger scope joined userId and entitlementKey with
// NUL, so two scopes whose IDs hold NUL could share a ledger partition.
func TestHashedLedgerScopesNeverCollide(t *testing.T) {
	a, c := strings.Repeat("😀", 255), strings.Repeat("😀", 255)
	s1 := usage.Scope{UserID: a + "\x00", EntitlementKey: c}
	s2 := usage.Scope{UserID: a, EntitlementKey: "\x00" + c}
	p1, _ := dynamodb.LedgerKey(s1, "k")
	p2, _ := dynamodb.LedgerKey(s2, "k")
	if !strings.HasPrefix(p1, "SCOPEHASH#") || !strings.HasPrefix(p2, "SCOPEHASH#") {
		t.Fatalf("not hashed: %.20s… %.20s…", p1, p2)
	}
	if p1 == p2 {
		t.Errorf("two scopes share the ledger partition %s", p1)
	}
}
