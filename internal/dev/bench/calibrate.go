package bench

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// EmulatorCost is what one request shape costs DynamoDB Local: its CPU
// time per request, measured on a warm JVM. It explains why throughput on
// the emulator follows the emulator's work per event rather than the
// number of requests.
type EmulatorCost struct {
	Request           string  `json:"request"`
	Items             int     `json:"items"`
	RequestsPerSecond float64 `json:"requestsPerSecond"`
	EmulatorCPUMs     float64 `json:"emulatorCpuMsPerRequest"`
	EmulatorCores     float64 `json:"emulatorCores"`
}

// Calibrate measures DynamoDB Local (process pid) on single-item requests
// and on transactions of 2, 4 and 10 items shaped like the store's (one
// entitlement update, the rest ledger puts), each with 4 concurrent
// callers, after warming every shape up: the median of 3 interleaved
// rounds.
func Calibrate(ctx context.Context, pid int, progress io.Writer) ([]EmulatorCost, error) {
	cfg, err := NewAWSConfig(ctx, nil)
	if err != nil {
		return nil, err
	}
	c := dynamodb.NewFromConfig(cfg)
	tb := tables{entitlements: "calibrate-entitlements", ledger: "calibrate-ledger"}
	defer dropTables(c, tb)
	if err := createTables(ctx, c, tb); err != nil {
		return nil, err
	}
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	n := func(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }
	var seq atomic.Int64
	entKey := func(i int64) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{"pk": s(fmt.Sprintf("USER#user-%05d", i%500)), "sk": s("ENTITLEMENT#API_CALLS")}
	}
	ledgerItem := func(i int64, j int) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{
			"pk": s(fmt.Sprintf("USER#user-%05d#ENTITLEMENT#API_CALLS", i%500)), "sk": s(fmt.Sprintf("KEY#evt-%d-%d", i, j)),
			"userId": s(fmt.Sprintf("user-%05d", i%500)), "entitlementKey": s("API_CALLS"), "dedupKey": s(fmt.Sprintf("evt-%d-%d", i, j)),
			"amount": n("1"), "appliedAt": s(time.Now().UTC().Format(time.RFC3339Nano)), "expiresAt": n("1900000000"),
			"messageId": s("6f1c2e3d-4b5a-4978-8e6f-0123456789ab"), "keySource": s("messageId"),
			"metadata": s(`{"feature":"chat","requestId":"0b7e4c9a-5d21-4f3e-8a6b-1c2d3e4f5a6b"}`),
		}
	}
	update := func(i int64) *types.Update {
		return &types.Update{TableName: aws.String(tb.entitlements), Key: entKey(i),
			UpdateExpression:          aws.String("SET #used = if_not_exists(#used, :zero) + :delta"),
			ConditionExpression:       aws.String("attribute_exists(#pk) OR attribute_not_exists(#pk)"),
			ExpressionAttributeNames:  map[string]string{"#used": "used", "#pk": "pk"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":zero": n("0"), ":delta": n("1")}}
	}
	tx := func(items int) func() error {
		return func() error {
			i := seq.Add(1)
			ti := []types.TransactWriteItem{{Update: update(i)}}
			for j := 1; j < items; j++ {
				ti = append(ti, types.TransactWriteItem{Put: &types.Put{TableName: aws.String(tb.ledger), Item: ledgerItem(i, j),
					ConditionExpression: aws.String("attribute_not_exists(#pk)"), ExpressionAttributeNames: map[string]string{"#pk": "pk"}}})
			}
			_, err := c.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: ti})
			return err
		}
	}
	shapes := []struct {
		name  string
		items int
		f     func() error
	}{
		{"PutItem (ledger-sized item)", 1, func() error {
			i := seq.Add(1)
			_, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(tb.ledger), Item: ledgerItem(i, 0)})
			return err
		}},
		{"UpdateItem (entitlement)", 1, func() error {
			u := update(seq.Add(1))
			_, err := c.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: u.TableName, Key: u.Key, UpdateExpression: u.UpdateExpression,
				ExpressionAttributeNames: map[string]string{"#used": "used"}, ExpressionAttributeValues: u.ExpressionAttributeValues})
			return err
		}},
		{"GetItem (entitlement)", 1, func() error {
			_, err := c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(tb.entitlements), Key: entKey(seq.Add(1))})
			return err
		}},
		{"TransactWriteItems", 2, tx(2)},
		{"TransactWriteItems", 4, tx(4)},
		{"TransactWriteItems", 10, tx(10)},
	}
	run := func(f func() error, workers, per int) (time.Duration, time.Duration, error) {
		cpu0, t0 := emulatorCPU(pid), time.Now()
		var wg sync.WaitGroup
		var firstErr atomic.Value
		for range workers {
			wg.Go(func() {
				for range per {
					if err := f(); err != nil {
						firstErr.CompareAndSwap(nil, err)
						return
					}
				}
			})
		}
		wg.Wait()
		if err, _ := firstErr.Load().(error); err != nil {
			return 0, 0, err
		}
		return time.Since(t0), emulatorCPU(pid) - cpu0, nil
	}
	fmt.Fprintf(progress, "==> calibrating DynamoDB Local: %d request shapes, warm-up then 3 interleaved rounds (medians)\n", len(shapes))
	for range 3 {
		for _, sh := range shapes {
			if _, _, err := run(sh.f, 4, 300); err != nil {
				return nil, fmt.Errorf("calibrate %s: %w", sh.name, err)
			}
		}
	}
	const workers, per, rounds = 4, 400, 3
	rates := make([][]float64, len(shapes))
	cpus := make([][]float64, len(shapes))
	cores := make([][]float64, len(shapes))
	for range rounds {
		for i, sh := range shapes {
			wall, cpu, err := run(sh.f, workers, per)
			if err != nil {
				return nil, fmt.Errorf("calibrate %s: %w", sh.name, err)
			}
			reqs := float64(workers * per)
			rates[i] = append(rates[i], reqs/wall.Seconds())
			cpus[i] = append(cpus[i], float64(cpu)/float64(time.Millisecond)/reqs)
			cores[i] = append(cores[i], float64(cpu)/float64(wall))
		}
	}
	var out []EmulatorCost
	for i, sh := range shapes {
		out = append(out, EmulatorCost{Request: sh.name, Items: sh.items, RequestsPerSecond: Percentile(rates[i], 50),
			EmulatorCPUMs: Percentile(cpus[i], 50), EmulatorCores: Percentile(cores[i], 50)})
	}
	return out, nil
}
