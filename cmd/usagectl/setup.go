package main

import (
	"context"
	"fmt"
	"net/url"
	"path"
	"time"

	awssns "github.com/aws/aws-sdk-go-v2/service/sns"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/spf13/cobra"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/sqs"
)

const setupDetails = `Creates, if they do not exist, the ledger table, the usage event queue and
its dead-letter queue (NAME-dlq, with a redrive policy after
--max-receive-count receives), and prints their names and URLs. Running it
again changes nothing and prints the same.

With --local it also creates an entitlements table shaped like
access-service's: for local development and tests only. In AWS the
entitlements table belongs to access-service, and the Terraform module
infra/services/usage-event-service creates the ledger and the queues.

Names default to the service's variables (USAGE_LEDGER_TABLE,
ENTITLEMENTS_TABLE, the last part of USAGE_EVENT_QUEUE_URL), then to
usage-ledger, entitlements and usage-event-queue. A queue name ending in
.fifo makes FIFO queues.

With --topic it also creates the SNS topic usage notifications are
published to (a name ending in .fifo makes a FIFO topic) and prints its
ARN, for NOTIFY_TOPIC_ARN.`

type setupResult struct {
	LedgerTable       tableResult  `json:"ledgerTable"`
	EntitlementsTable *tableResult `json:"entitlementsTable,omitempty"`
	Queue             queueResult  `json:"queue"`
	DeadLetterQueue   queueResult  `json:"deadLetterQueue"`
	Topic             *topicResult `json:"topic,omitempty"`
}

type tableResult struct {
	Name    string `json:"name"`
	Created bool   `json:"created"`
}

type queueResult struct {
	URL string `json:"url"`
	ARN string `json:"arn"`
}

// setupFlags are the flags of usagectl setup.
type setupFlags struct {
	queue, ledger, ents, topic string
	local, asJSON              bool
	maxReceives                int
	visibility                 time.Duration
}

func (a *app) setupCmd() *cobra.Command {
	var f setupFlags
	cmd := &cobra.Command{
		Use:   "setup [flags]",
		Short: "create the ledger table and the queues (and, with --local, the entitlements table)",
		Long:  setupDetails,
		Args:  noArgs,
	}
	fl := cmd.Flags()
	fl.StringVar(&f.queue, "queue", "", "queue `name` (default: from $USAGE_EVENT_QUEUE_URL, else usage-event-queue)")
	fl.StringVar(&f.ledger, "ledger-table", "", "ledger table `name` (default $USAGE_LEDGER_TABLE, else usage-ledger)")
	fl.StringVar(&f.ents, "entitlements-table", "", "entitlements table `name` for --local (default $ENTITLEMENTS_TABLE, else entitlements)")
	fl.BoolVar(&f.local, "local", false, "also create the entitlements table (local development only)")
	fl.StringVar(&f.topic, "topic", "", "also create the notifications SNS topic `name` and print its ARN")
	fl.IntVar(&f.maxReceives, "max-receive-count", 5, "receives before SQS moves a message to the dead-letter queue")
	fl.DurationVar(&f.visibility, "visibility-timeout", 30*time.Second, "the queue's visibility timeout")
	fl.BoolVar(&f.asJSON, "json", false, "print JSON")
	cmd.RunE = a.runE(func(ctx context.Context, cmd *cobra.Command) error {
		if cmd.Flags().Changed("entitlements-table") && !f.local {
			return usagef("--entitlements-table needs --local: in AWS the entitlements table belongs to access-service")
		}
		return a.setup(ctx, f)
	})
	return cmd
}

func (a *app) setup(ctx context.Context, f setupFlags) error {
	if f.maxReceives < 1 || f.maxReceives > 1000 {
		return usagef("--max-receive-count must be 1 to 1000, got %d", f.maxReceives)
	}
	if f.visibility < 0 || f.visibility > 12*time.Hour || f.visibility%time.Second != 0 {
		return usagef("--visibility-timeout must be whole seconds from 0s to 12h, got %v", f.visibility)
	}
	queueName := f.queue
	if queueName == "" {
		queueName = "usage-event-queue"
		if u, err := url.Parse(a.getenv("USAGE_EVENT_QUEUE_URL")); err == nil && path.Base(u.Path) != "." && path.Base(u.Path) != "/" {
			queueName = path.Base(u.Path)
		}
	}
	ledgerName := a.setting(f.ledger, "USAGE_LEDGER_TABLE")
	if ledgerName == "" {
		ledgerName = "usage-ledger"
	}
	entsName := a.setting(f.ents, "ENTITLEMENTS_TABLE")
	if entsName == "" {
		entsName = "entitlements"
	}
	if f.local && entsName == ledgerName {
		return usagef("the ledger and entitlements tables must differ (both are %q)", ledgerName)
	}

	cfg, err := a.awsConfig(ctx)
	if err != nil {
		return err
	}
	ddb := a.dynamoDB(cfg)
	var res setupResult
	res.LedgerTable.Name = ledgerName
	if res.LedgerTable.Created, err = dynamodb.CreateLedgerTable(ctx, ddb, ledgerName); err != nil {
		return fmt.Errorf("ledger table: %w", err)
	}
	if f.local {
		res.EntitlementsTable = &tableResult{Name: entsName}
		keys, err := a.entitlementKeys()
		if err != nil {
			return err
		}
		if res.EntitlementsTable.Created, err = dynamodb.CreateEntitlementsTable(ctx, ddb, entsName, keys); err != nil {
			return fmt.Errorf("entitlements table: %w", err)
		}
	}
	q, err := sqs.CreateQueues(ctx, awssqs.NewFromConfig(cfg), queueName, f.maxReceives, int(f.visibility/time.Second))
	if err != nil {
		return err
	}
	res.Queue = queueResult{URL: q.URL, ARN: q.ARN}
	res.DeadLetterQueue = queueResult{URL: q.DeadLetterURL, ARN: q.DeadLetterARN}
	if f.topic != "" {
		if res.Topic, err = a.setupTopic(ctx, awssns.NewFromConfig(cfg), f.topic); err != nil {
			return err
		}
	}

	if f.asJSON {
		return a.writeJSON(res)
	}
	w := a.stdout
	state := func(created bool) string {
		if created {
			return "created"
		}
		return "already existed"
	}
	fmt.Fprintf(w, "ledger table        %s (%s)\n", res.LedgerTable.Name, state(res.LedgerTable.Created))
	if e := res.EntitlementsTable; e != nil {
		fmt.Fprintf(w, "entitlements table  %s (%s)\n", e.Name, state(e.Created))
	}
	fmt.Fprintf(w, "queue               %s\n                    %s\n", res.Queue.URL, res.Queue.ARN)
	fmt.Fprintf(w, "dead-letter queue   %s\n                    %s\n", res.DeadLetterQueue.URL, res.DeadLetterQueue.ARN)
	if res.Topic != nil {
		fmt.Fprintf(w, "topic               %s\n", res.Topic.ARN)
	}
	fmt.Fprintf(w, "\nFor the service and usagectl:\n")
	if e := res.EntitlementsTable; e != nil {
		fmt.Fprintf(w, "  export ENTITLEMENTS_TABLE=%s\n", e.Name)
	}
	fmt.Fprintf(w, "  export USAGE_LEDGER_TABLE=%s\n  export USAGE_EVENT_QUEUE_URL=%s\n  export DEAD_LETTER_QUEUE_URL=%s\n",
		res.LedgerTable.Name, res.Queue.URL, res.DeadLetterQueue.URL)
	if res.Topic != nil {
		fmt.Fprintf(w, "  export NOTIFY_TOPIC_ARN=%s\n", res.Topic.ARN)
	}
	return nil
}
