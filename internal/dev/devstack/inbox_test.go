package devstack_test

import (
	"context"
	"encoding/json"
	"maps"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awssns "github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/usage-event-service/usage-event-service/internal/dev/devstack"
	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
	"github.com/usage-event-service/usage-event-service/notify"
)

func TestMain(m *testing.M) { emulator.Main(m) }

// fauxqs serves SNS on the SQS endpoint: what is published to the topic
// arrives in the inbox in SNS's JSON envelope, message and attributes intact.
func TestInboxReceivesWhatIsPublishedInTheSNSEnvelope(t *testing.T) {
	endpoint := emulator.SQS(t)
	cfg := aws.Config{Region: devstack.Region, Credentials: credentials.NewStaticCredentialsProvider(devstack.Credentials, devstack.Credentials, "")}
	sn := awssns.NewFromConfig(cfg, func(o *awssns.Options) { o.BaseEndpoint = aws.String(endpoint) })
	sq := awssqs.NewFromConfig(cfg, func(o *awssqs.Options) { o.BaseEndpoint = aws.String(endpoint) })
	ctx := context.Background()
	name := emulator.UniqueName(t, "inbox")
	topic, err := notify.CreateTopic(ctx, sn, name)
	if err != nil {
		t.Fatal(err)
	}
	in, err := devstack.SubscribeInbox(ctx, sn, sq, topic, name)
	if err != nil {
		t.Fatal(err)
	}
	if in.TopicARN != topic || in.QueueURL == "" || in.SubscriptionARN == "" {
		t.Fatalf("inbox %+v, want one subscribed to %s", in, topic)
	}

	body := `{"notificationId":"n1","type":"usage.threshold.reached","used":81}`
	attrs := map[string]string{"type": "usage.threshold.reached", "userId": "u1", "entitlementKey": "AI_TUTOR_ACCESS"}
	msgAttrs := map[string]snstypes.MessageAttributeValue{}
	for k, v := range attrs {
		msgAttrs[k] = snstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
	}
	if _, err := sn.Publish(ctx, &awssns.PublishInput{TopicArn: aws.String(in.TopicARN), Message: aws.String(body), MessageAttributes: msgAttrs}); err != nil {
		t.Fatal(err)
	}
	got, err := in.Receive(ctx, sq, 10*time.Second, func(d []devstack.Delivery) bool { return len(d) >= 1 })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("received %d messages, want 1", len(got))
	}
	if got[0].Message != body || !maps.Equal(got[0].Attributes, attrs) || got[0].MessageID == "" {
		t.Errorf("received %+v, want message %s with attributes %v", got[0], body, attrs)
	}
	if more, err := in.Receive(ctx, sq, 1500*time.Millisecond, nil); err != nil || len(more) != 0 {
		t.Errorf("the inbox still held %v (%v): what is received is deleted", more, err)
	}
}

func TestParseDeliveryRejectsWhatSNSDidNotDeliver(t *testing.T) {
	raw, _ := json.Marshal(map[string]string{"notificationId": "n1"})
	for _, body := range []string{string(raw), "not json", `{"Type":"SubscriptionConfirmation","Message":"x"}`} {
		if d, err := devstack.ParseDelivery(body); err == nil {
			t.Errorf("ParseDelivery(%s) = %+v, want an error", body, d)
		}
	}
	d, err := devstack.ParseDelivery(`{"Type":"Notification","MessageId":"m","Message":"{}","MessageAttributes":{"type":{"Type":"String","Value":"usage.limit.rejected"}}}`)
	if err != nil || d.Message != "{}" || d.MessageID != "m" || d.Attributes["type"] != "usage.limit.rejected" {
		t.Errorf("ParseDelivery = %+v, %v", d, err)
	}
}
