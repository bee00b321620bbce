package notify_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	awssns "github.com/aws/aws-sdk-go-v2/service/sns"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
	"github.com/usage-event-service/usage-event-service/metrics"
	"github.com/usage-event-service/usage-event-service/notify"
	"github.com/usage-event-service/usage-event-service/usage"
)

func TestMain(m *testing.M) { emulator.Main(m) }

// world is one test's tables, topic and subscribed queue, on the shared
// emulators: DynamoDB Local, and fauxqs serving both SQS and SNS.
type world struct {
	cfg          aws.Config
	ddb          *awsdynamodb.Client
	sqs          *awssqs.Client
	sns          *awssns.Client
	entitlements string
	ledger       string
	topicARN     string
	subscriber   string // the queue subscribed to the topic
}

var snsEnv sync.Once

// stack points the SDK at the emulators, SNS included (fauxqs serves it
// on its SQS port), and loads the configuration the production way.
func stack(t *testing.T) aws.Config {
	t.Helper()
	emulator.Env(t)
	snsEnv.Do(func() { os.Setenv("AWS_ENDPOINT_URL_SNS", os.Getenv("AWS_ENDPOINT_URL_SQS")) })
	cfg, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// newWorld creates the tables, a topic named after the test (FIFO when
// fifo) and a queue subscribed to it with raw delivery.
func newWorld(t *testing.T, fifo bool) *world {
	t.Helper()
	cfg := stack(t)
	ctx := context.Background()
	w := &world{cfg: cfg, ddb: awsdynamodb.NewFromConfig(cfg), sqs: awssqs.NewFromConfig(cfg), sns: awssns.NewFromConfig(cfg),
		entitlements: emulator.UniqueName(t, "ent"), ledger: emulator.UniqueName(t, "ledger")}
	if _, err := dynamodb.CreateEntitlementsTable(ctx, w.ddb, w.entitlements, dynamodb.DefaultEntitlementKeys); err != nil {
		t.Fatal(err)
	}
	if _, err := dynamodb.CreateLedgerTable(ctx, w.ddb, w.ledger); err != nil {
		t.Fatal(err)
	}
	topic, queue := emulator.UniqueName(t, "topic"), emulator.UniqueName(t, "sub")
	in := &awssqs.CreateQueueInput{QueueName: aws.String(queue)}
	if fifo {
		topic, queue = topic+".fifo", queue+".fifo"
		in = &awssqs.CreateQueueInput{QueueName: aws.String(queue), Attributes: map[string]string{"FifoQueue": "true"}}
	}
	var err error
	if w.topicARN, err = notify.CreateTopic(ctx, w.sns, topic); err != nil {
		t.Fatal(err)
	}
	q, err := w.sqs.CreateQueue(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	w.subscriber = aws.ToString(q.QueueUrl)
	if _, err := notify.SubscribeQueue(ctx, w.sns, w.sqs, w.topicARN, w.subscriber); err != nil {
		t.Fatal(err)
	}
	return w
}

// entitlement writes an entitlement as access-service would.
func (w *world) entitlement(t *testing.T, e dynamodb.EntitlementItem) {
	t.Helper()
	if err := dynamodb.PutEntitlement(context.Background(), w.ddb, w.entitlements, dynamodb.DefaultEntitlementKeys, e); err != nil {
		t.Fatal(err)
	}
}

// thresholdsAttr is a notifyThresholds attribute: a list of numbers.
func thresholdsAttr(ps ...string) map[string]types.AttributeValue {
	var l []types.AttributeValue
	for _, p := range ps {
		l = append(l, &types.AttributeValueMemberN{Value: p})
	}
	return map[string]types.AttributeValue{usage.AttrNotifyThresholds: &types.AttributeValueMemberL{Value: l}}
}

// delivered is one message the subscribed queue received.
type delivered struct {
	raw   string
	msg   notify.Message
	attrs map[string]string
	group string // FIFO message group
}

// receive reads (and deletes) what the subscribed queue receives until
// it has been quiet for `quiet` after at least `want` messages, or
// timeout.
func (w *world) receive(t *testing.T, want int, quiet, timeout time.Duration) []delivered {
	t.Helper()
	var got []delivered
	deadline := time.Now().Add(timeout)
	lastNew := time.Now()
	for time.Now().Before(deadline) {
		if len(got) >= want && time.Since(lastNew) >= quiet {
			break
		}
		out, err := w.sqs.ReceiveMessage(context.Background(), &awssqs.ReceiveMessageInput{
			QueueUrl: aws.String(w.subscriber), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
			MessageAttributeNames: []string{"All"}, MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameMessageGroupId},
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			d := delivered{raw: aws.ToString(m.Body), attrs: map[string]string{}, group: m.Attributes["MessageGroupId"]}
			if err := json.Unmarshal([]byte(d.raw), &d.msg); err != nil {
				t.Errorf("delivered body %q: %v", d.raw, err)
			}
			for k, v := range m.MessageAttributes {
				d.attrs[k] = aws.ToString(v.StringValue)
			}
			got = append(got, d)
			lastNew = time.Now()
			w.sqs.DeleteMessage(context.Background(), &awssqs.DeleteMessageInput{QueueUrl: aws.String(w.subscriber), ReceiptHandle: m.ReceiptHandle})
		}
	}
	return got
}

// recorded lists the notifications recorded for a scope.
func (w *world) recorded(t *testing.T, scope usage.Scope) []usage.Notification {
	t.Helper()
	notes, err := dynamodb.ListNotifications(context.Background(), w.ddb, w.ledger, scope)
	if err != nil {
		t.Fatal(err)
	}
	return notes
}

// publisher publishes to the world's topic with the given SNS client.
func (w *world) publisher(c notify.SNSClient, m notify.Recorder) *notify.Publisher {
	return &notify.Publisher{SNS: c, TopicARN: w.topicARN, DynamoDB: w.ddb, LedgerTable: w.ledger, Metrics: m, Grace: time.Second,
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))}
}

// unreachableSNS is an SNS client whose endpoint is a closed port on
// this machine: every publication fails as it would with SNS down.
func unreachableSNS(t *testing.T, cfg aws.Config) *awssns.Client {
	t.Helper()
	return awssns.NewFromConfig(cfg, func(o *awssns.Options) {
		o.BaseEndpoint = aws.String(closedPort(t))
		o.Retryer = aws.NopRetryer{}
	})
}

// closedPort is the URL of a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return "http://127.0.0.1:" + strconv.Itoa(port)
}

// countingMetrics sums what the publisher reports.
type countingMetrics struct {
	mu sync.Mutex
	metrics.Notifications
	sweeps int
}

func (c *countingMetrics) RecordNotifications(_ context.Context, n metrics.Notifications) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Recorded += n.Recorded
	c.Published += n.Published
	c.Failed += n.Failed
	if n.Swept {
		c.sweeps++
		c.OldestUnpublished = n.OldestUnpublished
	}
}

func (c *countingMetrics) get() (metrics.Notifications, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Notifications, c.sweeps
}

// overageLimitAttr is an overageLimit attribute, as access-service sets it.
func overageLimitAttr(limit string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{usage.AttrOverageLimit: &types.AttributeValueMemberN{Value: limit}}
}

// subscribeFiltered subscribes another queue to the world's topic, with
// raw delivery and the filter policy (on the message attributes), and
// returns the world as that queue receives it.
func (w *world) subscribeFiltered(t *testing.T, policy string) *world {
	t.Helper()
	ctx := context.Background()
	q, err := w.sqs.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String(emulator.UniqueName(t, "filtered"))})
	if err != nil {
		t.Fatal(err)
	}
	arn, err := notify.SubscribeQueue(ctx, w.sns, w.sqs, w.topicARN, aws.ToString(q.QueueUrl))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.sns.SetSubscriptionAttributes(ctx, &awssns.SetSubscriptionAttributesInput{
		SubscriptionArn: aws.String(arn), AttributeName: aws.String("FilterPolicy"), AttributeValue: aws.String(policy),
	}); err != nil {
		t.Fatal(err)
	}
	f := *w
	f.subscriber = aws.ToString(q.QueueUrl)
	return &f
}
