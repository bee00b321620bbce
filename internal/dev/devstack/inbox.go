package devstack

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssns "github.com/aws/aws-sdk-go-v2/service/sns"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// SNSClient is what subscribing an inbox to a topic needs of SNS.
type SNSClient interface {
	Subscribe(context.Context, *awssns.SubscribeInput, ...func(*awssns.Options)) (*awssns.SubscribeOutput, error)
}

// SQSClient is what an inbox needs of SQS.
type SQSClient interface {
	CreateQueue(context.Context, *awssqs.CreateQueueInput, ...func(*awssqs.Options)) (*awssqs.CreateQueueOutput, error)
	GetQueueAttributes(context.Context, *awssqs.GetQueueAttributesInput, ...func(*awssqs.Options)) (*awssqs.GetQueueAttributesOutput, error)
	ReceiveMessage(context.Context, *awssqs.ReceiveMessageInput, ...func(*awssqs.Options)) (*awssqs.ReceiveMessageOutput, error)
	DeleteMessage(context.Context, *awssqs.DeleteMessageInput, ...func(*awssqs.Options)) (*awssqs.DeleteMessageOutput, error)
}

// Inbox is an SQS queue subscribed to a notifications topic the way a
// subscriber would subscribe one, with SNS's default delivery: each message
// body is the SNS JSON envelope, whose Message is the notification.
type Inbox struct {
	TopicARN, QueueURL, SubscriptionARN string
}

// SubscribeInbox creates the queue (or finds it) and subscribes it to the
// topic (create that with notify.CreateTopic or usagectl setup --topic),
// without raw message delivery: what a subscriber that keeps SNS's
// defaults receives. On fauxqs the subscription is confirmed at once and
// the queue needs no policy; in AWS the queue's policy would have to let
// the topic send to it (docs/notifications.md).
func SubscribeInbox(ctx context.Context, sn SNSClient, sq SQSClient, topicARN, queueName string) (Inbox, error) {
	q, err := sq.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String(queueName)})
	if err != nil {
		return Inbox{}, fmt.Errorf("create queue %s: %w", queueName, err)
	}
	attrs, err := sq.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{
		QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return Inbox{}, fmt.Errorf("queue %s: %w", queueName, err)
	}
	sub, err := sn.Subscribe(ctx, &awssns.SubscribeInput{
		TopicArn: aws.String(topicARN), Protocol: aws.String("sqs"),
		Endpoint:              aws.String(attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]),
		ReturnSubscriptionArn: true,
	})
	if err != nil {
		return Inbox{}, fmt.Errorf("subscribe %s to %s: %w", queueName, topicARN, err)
	}
	return Inbox{TopicARN: topicARN, QueueURL: aws.ToString(q.QueueUrl), SubscriptionARN: aws.ToString(sub.SubscriptionArn)}, nil
}

// Delivery is one message an inbox received: the SNS envelope's parts a
// subscriber reads.
type Delivery struct {
	// MessageID is SNS's ID of this delivery (a repeat of a notification
	// has another).
	MessageID string
	// Message is the notification's JSON, as published.
	Message string
	// Attributes are the message attributes (type, userId, entitlementKey).
	Attributes map[string]string
}

// envelope is SNS's JSON envelope of a message delivered to SQS.
type envelope struct {
	Type              string
	MessageID         string `json:"MessageId"`
	Message           string
	MessageAttributes map[string]struct{ Type, Value string }
}

// ParseDelivery reads an SQS body delivered by SNS: the JSON envelope
// ("Type": "Notification"), whose Message is the published message.
func ParseDelivery(body string) (Delivery, error) {
	var env envelope
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		return Delivery{}, fmt.Errorf("not an SNS envelope: %w", err)
	}
	if env.Type != "Notification" {
		return Delivery{}, fmt.Errorf("not an SNS notification envelope (Type %q)", env.Type)
	}
	d := Delivery{MessageID: env.MessageID, Message: env.Message, Attributes: map[string]string{}}
	for k, v := range env.MessageAttributes {
		d.Attributes[k] = v.Value
	}
	return d, nil
}

// Receive reads the inbox for up to wait, deleting what it reads, until
// done says it has enough (done is called after each message; nil reads
// until wait is over).
func (in Inbox) Receive(ctx context.Context, sq SQSClient, wait time.Duration, done func([]Delivery) bool) ([]Delivery, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var out []Delivery
	for ctx.Err() == nil {
		res, err := sq.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{
			QueueUrl: aws.String(in.QueueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
		})
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return out, fmt.Errorf("receive from %s: %w", in.QueueURL, err)
		}
		for _, m := range res.Messages {
			d, err := ParseDelivery(aws.ToString(m.Body))
			if err != nil {
				return out, err
			}
			out = append(out, d)
			if _, err := sq.DeleteMessage(ctx, &awssqs.DeleteMessageInput{QueueUrl: aws.String(in.QueueURL), ReceiptHandle: m.ReceiptHandle}); err != nil && ctx.Err() == nil {
				return out, fmt.Errorf("delete from %s: %w", in.QueueURL, err)
			}
			if done != nil && done(out) {
				return out, nil
			}
		}
	}
	return out, nil
}
