package notify

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// AdminClient is what set-up needs of SNS. The service itself only
// publishes (SNSClient); usagectl, the local demo and tests call these.
type AdminClient interface {
	CreateTopic(context.Context, *sns.CreateTopicInput, ...func(*sns.Options)) (*sns.CreateTopicOutput, error)
	Subscribe(context.Context, *sns.SubscribeInput, ...func(*sns.Options)) (*sns.SubscribeOutput, error)
}

// CreateTopic creates the notifications topic, or finds it: SNS answers a
// CreateTopic of an existing topic with its ARN. A name ending in .fifo
// makes a FIFO topic (the service then sets each message's group and
// deduplication IDs).
func CreateTopic(ctx context.Context, c AdminClient, name string) (string, error) {
	in := &sns.CreateTopicInput{Name: aws.String(name)}
	if IsFIFO(name) {
		in.Attributes = map[string]string{"FifoTopic": "true"}
	}
	out, err := c.CreateTopic(ctx, in)
	if err != nil {
		return "", fmt.Errorf("create topic %s: %w", name, err)
	}
	return aws.ToString(out.TopicArn), nil
}

// QueueClient is what subscribing a queue needs of SQS.
type QueueClient interface {
	GetQueueAttributes(context.Context, *awssqs.GetQueueAttributesInput, ...func(*awssqs.Options)) (*awssqs.GetQueueAttributesOutput, error)
}

// SubscribeQueue subscribes an SQS queue to the topic, with raw message
// delivery (the body is the notification's JSON, and the SNS attributes
// arrive as SQS message attributes), and returns the subscription ARN.
// For local development and tests: in AWS the queue's policy must also
// allow the topic to send to it.
func SubscribeQueue(ctx context.Context, c AdminClient, q QueueClient, topicARN, queueURL string) (string, error) {
	attrs, err := q.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{
		QueueUrl: aws.String(queueURL), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return "", fmt.Errorf("queue %s: %w", queueURL, err)
	}
	out, err := c.Subscribe(ctx, &sns.SubscribeInput{
		TopicArn: aws.String(topicARN), Protocol: aws.String("sqs"),
		Endpoint:              aws.String(attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]),
		Attributes:            map[string]string{"RawMessageDelivery": "true"},
		ReturnSubscriptionArn: true,
	})
	if err != nil {
		return "", fmt.Errorf("subscribe %s to %s: %w", queueURL, topicARN, err)
	}
	return aws.ToString(out.SubscriptionArn), nil
}
