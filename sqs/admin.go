package sqs

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// AdminClient is what set-up needs; the service itself never calls it.
type AdminClient interface {
	CreateQueue(context.Context, *sqs.CreateQueueInput, ...func(*sqs.Options)) (*sqs.CreateQueueOutput, error)
	GetQueueAttributes(context.Context, *sqs.GetQueueAttributesInput, ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
}

// Queues are a usage-event queue and its dead-letter queue.
type Queues struct {
	URL, ARN                     string
	DeadLetterURL, DeadLetterARN string
}

// CreateQueues creates, idempotently, the queue `name` and its dead-letter
// queue `name-dlq` (".fifo" kept last for FIFO queues), with a redrive
// policy of maxReceiveCount: the shape the Terraform module deploys (which
// names the pair {project}-{env}-usage-event-queue/-dlq and adds
// encryption and access policies), for local development and tests.
func CreateQueues(ctx context.Context, c AdminClient, name string, maxReceiveCount int, visibilityTimeoutSeconds int) (Queues, error) {
	fifo := strings.HasSuffix(name, ".fifo")
	base := strings.TrimSuffix(name, ".fifo")
	dlqName := base + "-dlq"
	attrs := map[string]string{}
	if fifo {
		dlqName += ".fifo"
		attrs[string(types.QueueAttributeNameFifoQueue)] = "true"
	}
	var q Queues
	var err error
	if q.DeadLetterURL, q.DeadLetterARN, err = createQueue(ctx, c, dlqName, attrs); err != nil {
		return q, err
	}
	redrive, _ := json.Marshal(map[string]string{"deadLetterTargetArn": q.DeadLetterARN, "maxReceiveCount": strconv.Itoa(maxReceiveCount)})
	main := map[string]string{
		string(types.QueueAttributeNameRedrivePolicy):     string(redrive),
		string(types.QueueAttributeNameVisibilityTimeout): strconv.Itoa(visibilityTimeoutSeconds),
	}
	for k, v := range attrs {
		main[k] = v
	}
	q.URL, q.ARN, err = createQueue(ctx, c, name, main)
	return q, err
}

func createQueue(ctx context.Context, c AdminClient, name string, attrs map[string]string) (url, arn string, err error) {
	out, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		return "", "", fmt.Errorf("create queue %s: %w", name, err)
	}
	got, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: out.QueueUrl, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return "", "", fmt.Errorf("queue %s attributes: %w", name, err)
	}
	return aws.ToString(out.QueueUrl), got.Attributes[string(types.QueueAttributeNameQueueArn)], nil
}
