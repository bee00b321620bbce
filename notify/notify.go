// Package notify publishes usage notifications to Amazon SNS. Whether a
// notification exists is decided in the write that caused it (package
// usage) and recorded in the ledger table's outbox (package dynamodb);
// this package only delivers: right after the write (Publisher is the
// store's dynamodb.Outbox), and by a recovery sweep (Publisher.Sweep) for
// what a crash or an SNS failure left unpublished. Delivery is at least
// once: a subscriber drops the rare repeat by notificationId.
package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/metrics"
	"github.com/usage-event-service/usage-event-service/usage"
)

// SNSClient is the part of the SNS API publishing needs (sns:Publish).
type SNSClient interface {
	Publish(context.Context, *sns.PublishInput, ...func(*sns.Options)) (*sns.PublishOutput, error)
}

// Table is what the outbox needs of DynamoDB: marking a notification
// published (UpdateItem) and, for the sweep, querying the pending index.
type Table interface {
	dynamodb.UpdateClient
	dynamodb.QueryClient
}

// Recorder receives the notification metrics (metrics.EMF in Lambda,
// metrics.Prometheus in the worker).
type Recorder interface {
	RecordNotifications(ctx context.Context, n metrics.Notifications)
}

// Defaults of a Publisher.
const (
	DefaultPublishTimeout = 5 * time.Second
	DefaultGrace          = 10 * time.Second
	DefaultSweepBatch     = 100
)

// Publisher publishes recorded notifications to one topic and takes them
// out of the outbox. It is safe for concurrent use.
type Publisher struct {
	SNS         SNSClient
	TopicARN    string
	DynamoDB    Table
	LedgerTable string
	// Logger gets one WARN line per failed publication (DEBUG per
	// published one); nil: slog.Default().
	Logger *slog.Logger
	// Metrics, when set, receives the counts.
	Metrics Recorder
	// PublishTimeout bounds the publication right after a write, so that
	// an unreachable SNS delays the write's caller by at most this much
	// (default DefaultPublishTimeout); the sweep publishes it later.
	PublishTimeout time.Duration
	// Grace: the sweep leaves notifications younger than this to the
	// publication right after their write (default DefaultGrace), so that
	// a healthy system publishes each once.
	Grace time.Duration
	// SweepBatch is how many pending notifications the sweep reads at a
	// time (default DefaultSweepBatch).
	SweepBatch int
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Recorded publishes what a committed write recorded, then marks each
// published. It implements dynamodb.Outbox. A failure is logged and
// counted, and the notification stays in the outbox for the sweep.
func (p *Publisher) Recorded(ctx context.Context, notes []usage.Notification) {
	timeout := p.PublishTimeout
	if timeout <= 0 {
		timeout = DefaultPublishTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	m := metrics.Notifications{Recorded: len(notes)}
	for _, n := range notes {
		if p.deliver(ctx, n, "write") {
			m.Published++
		} else {
			m.Failed++
		}
	}
	p.record(ctx, m)
}

// deliver publishes one notification and marks it published. It reports
// whether SNS accepted it; a failure to mark it afterwards is only logged
// (the sweep publishes it again: a repeat, never a loss).
func (p *Publisher) deliver(ctx context.Context, n usage.Notification, by string) bool {
	logger := p.logger().With("notificationId", n.ID, "type", n.Type, "userId", n.UserID, "entitlementKey", n.EntitlementKey, "by", by)
	in, err := p.input(n)
	if err == nil {
		_, err = p.SNS.Publish(ctx, in)
	}
	if err != nil {
		logger.WarnContext(ctx, "notification not published; left for the recovery sweep", "error", err.Error())
		return false
	}
	if err := dynamodb.MarkPublished(ctx, p.DynamoDB, p.LedgerTable, n, p.now()); err != nil && !conditionFailed(err) {
		logger.WarnContext(ctx, "notification published but not marked; the recovery sweep will publish it again", "error", err.Error())
		return true
	}
	logger.DebugContext(ctx, "notification published")
	return true
}

func (p *Publisher) record(ctx context.Context, m metrics.Notifications) {
	if p.Metrics != nil {
		p.Metrics.RecordNotifications(ctx, m)
	}
}

func (p *Publisher) logger() *slog.Logger {
	if p.Logger != nil {
		return p.Logger
	}
	return slog.Default()
}

func (p *Publisher) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// Message is the SNS message body: JSON, with exact numbers.
type Message struct {
	// NotificationID is stable for (type, userId, entitlementKey,
	// periodStart, threshold): subscribers drop repeats by it.
	NotificationID string `json:"notificationId"`
	Type           string `json:"type"`
	UserID         string `json:"userId"`
	EntitlementKey string `json:"entitlementKey"`
	// PoolID is set on a pool's notification: UserID is then the member
	// whose event crossed (or was rejected).
	PoolID string `json:"poolId,omitempty"`
	// PeriodStart is the period the notification belongs to; absent for
	// entitlements that never reset.
	PeriodStart string `json:"periodStart,omitempty"`
	// ThresholdPercent is set for usage.threshold.reached.
	ThresholdPercent *json.Number `json:"thresholdPercent,omitempty"`
	// Amount is, for usage.limit.rejected, what the rejected event asked for.
	Amount *json.Number `json:"amount,omitempty"`
	// OverageUsed is, for usage.overage.started only, the overage used
	// right after the event that went into it.
	OverageUsed *json.Number `json:"overageUsed,omitempty"`
	Limit       json.Number  `json:"limit"`
	// Used is, for a threshold, used right after the write that crossed
	// it; for a rejection, used when the event was rejected; for the
	// overage's start, the limit (the allowance is used up before the
	// overage is drawn from).
	Used json.Number `json:"used"`
	// EventID is the dedup key of the event whose write crossed (or that
	// was rejected, or that went into the overage).
	EventID    string `json:"eventId"`
	OccurredAt string `json:"occurredAt"`
}

// MessageOf is the message of a recorded notification. The same
// notification gives the same message whoever publishes it.
func MessageOf(n usage.Notification) Message {
	num := func(d *usage.Decimal) *json.Number {
		if d == nil {
			return nil
		}
		j := json.Number(d.String())
		return &j
	}
	m := Message{
		NotificationID: n.ID, Type: n.Type, UserID: n.UserID, EntitlementKey: n.EntitlementKey, PoolID: n.PoolID, PeriodStart: n.PeriodStart,
		ThresholdPercent: num(n.ThresholdPercent), Amount: num(n.Amount),
		Limit: json.Number(n.Limit.String()), Used: json.Number(n.Used.String()),
		EventID: n.EventID, OccurredAt: n.OccurredAt.UTC().Format(time.RFC3339Nano),
	}
	if n.Type == usage.NotifyOverageStarted {
		m.OverageUsed = num(n.OverageUsed)
	}
	return m
}

// Message attributes, for SNS subscription filter policies.
const (
	AttrType           = "type"
	AttrUserID         = "userId"
	AttrEntitlementKey = "entitlementKey"
)

// input is the Publish request of a notification: the JSON body, the
// attributes subscribers filter on, and on a FIFO topic the message group
// (the scope, so a scope's notifications keep their order) and the
// deduplication ID (the notification's).
func (p *Publisher) input(n usage.Notification) (*sns.PublishInput, error) {
	body, err := json.Marshal(MessageOf(n))
	if err != nil {
		return nil, err
	}
	str := func(v string) types.MessageAttributeValue {
		return types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
	}
	in := &sns.PublishInput{
		TopicArn: aws.String(p.TopicARN),
		Message:  aws.String(string(body)),
		MessageAttributes: map[string]types.MessageAttributeValue{
			AttrType: str(n.Type), AttrUserID: str(n.UserID), AttrEntitlementKey: str(n.EntitlementKey),
		},
	}
	if IsFIFO(p.TopicARN) {
		in.MessageGroupId = aws.String(GroupID(n.UserID, n.EntitlementKey))
		in.MessageDeduplicationId = aws.String(n.ID)
	}
	return in, nil
}

// IsFIFO reports whether a topic (by name or ARN) is a FIFO topic.
func IsFIFO(topic string) bool { return strings.HasSuffix(topic, ".fifo") }

// GroupID is the FIFO message group of a scope: "<len>:<userId>:<key>"
// when that is a valid group ID (at most 128 of ASCII letters, digits and
// punctuation), else "sha256:" and the hex digest of it.
func GroupID(userID, entitlementKey string) string {
	id := strconv.Itoa(len(userID)) + ":" + userID + ":" + entitlementKey
	if len(id) <= 128 && strings.IndexFunc(id, func(r rune) bool { return r < '!' || r > '~' }) < 0 {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return "sha256:" + hex.EncodeToString(sum[:])
}
