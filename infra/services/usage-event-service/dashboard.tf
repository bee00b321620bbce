locals {
  # The function's own metrics: CloudWatch Embedded Metric Format records in
  # its log (metrics/metrics.go), one set per batch, dimension FunctionName on
  # every metric; EventsRejected is also published per Reason.
  # infra/module_test.go checks this against metrics.Namespace.
  metric_namespace = "UsageEventService"

  # Every rejection reason the function can publish, in the Go code's order
  # (usage.Reasons); infra/module_test.go checks they match.
  rejection_reasons = [
    "INVALID_JSON",
    "MISSING_FIELD",
    "INVALID_FIELD",
    "INVALID_AMOUNT",
    "INVALID_METADATA",
    "ENTITLEMENT_NOT_FOUND",
    "LIMIT_EXCEEDED",
    "INVALID_ENTITLEMENT",
    "IDEMPOTENCY_CONFLICT",
    "REFUND_TARGET_NOT_FOUND",
    "REFUND_EXCEEDS_APPLIED",
    "PERIOD_ENDED",
    "HOLD_NOT_FOUND",
    "HOLD_NOT_ACTIVE",
    "COMMIT_EXCEEDS_HOLD",
    "INVALID_LEDGER_ENTRY",
    "GRANT_NOT_FOUND",
    "GRANT_NOT_ACTIVE",
    "TOO_MANY_GRANTS",
    "POOL_LIMIT_EXCEEDED",
    "POOL_NOT_FOUND",
    "INVALID_POOL",
  ]

  service_metric = { for name in [
    "EventsApplied", "EventsDuplicate", "EventsRejected", "EventsRetried", "EventsDeadLettered", "AmountConsumed", "ProcessingLatency",
    "NotificationsRecorded", "NotificationsPublished", "NotificationsFailed", "OldestUnpublishedNotificationAge",
    "HoldsReserved", "HoldsCommitted", "HoldsReleased", "HoldsExpired", "OldestExpiredHoldAge", "HoldSweepsFailed", "HoldsDeferred",
    ] :
    name => [local.metric_namespace, name, "FunctionName", local.function_name]
  }

  # The same metrics of the decisions function, which publishes its own
  # (reserves are synchronous only; commits and releases come both ways).
  decisions_metric = { for name in ["HoldsReserved", "HoldsCommitted", "HoldsReleased"] :
    name => [local.metric_namespace, name, "FunctionName", local.decisions_function_name]
  }

  lambda_metric = { for name in ["Duration", "Errors", "Throttles", "ConcurrentExecutions", "Invocations"] :
    name => ["AWS/Lambda", name, "FunctionName", local.function_name]
  }

  dashboard_widgets = concat([
    {
      type   = "text"
      x      = 0
      y      = 0
      width  = 24
      height = 3
      properties = {
        markdown = join("\n", [
          "## usage-event-service (${var.env})",
          "Queue **${local.queue_name}** → function **${local.function_name}** → entitlements table **${var.entitlements_table_name}** and ledger **${local.ledger_table_name}**. Rejected events go to **${local.dlq_name}**.",
          "DLQ not empty? Read *Rejections by reason* and *Recent warnings and errors*, fix the cause, then redrive: `aws sqs start-message-move-task --source-arn <DLQ ARN>` (messages return to the main queue; duplicates are recognised by the ledger).",
        ])
      }
    },
    {
      type   = "alarm"
      x      = 0
      y      = 3
      width  = 24
      height = 2
      properties = {
        title = "Alarms"
        alarms = concat([
          aws_cloudwatch_metric_alarm.dlq_not_empty.arn,
          aws_cloudwatch_metric_alarm.queue_oldest_message_age.arn,
          aws_cloudwatch_metric_alarm.function_errors.arn,
          aws_cloudwatch_metric_alarm.function_throttles.arn,
          aws_cloudwatch_metric_alarm.holds_unreleased.arn,
          aws_cloudwatch_metric_alarm.hold_sweeps_failing.arn,
        ], var.notifications_enabled ? [aws_cloudwatch_metric_alarm.notifications_unpublished[0].arn] : [])
      }
    },
    {
      type   = "metric"
      x      = 0
      y      = 5
      width  = 8
      height = 6
      properties = {
        title   = "Event outcomes (per minute)"
        region  = local.region
        view    = "timeSeries"
        stacked = false
        stat    = "Sum"
        period  = 60
        yAxis   = { left = { min = 0 } }
        metrics = [
          concat(local.service_metric.EventsApplied, [{ label = "Applied", color = "#2ca02c" }]),
          concat(local.service_metric.EventsDuplicate, [{ label = "Duplicate", color = "#1f77b4" }]),
          concat(local.service_metric.EventsRejected, [{ label = "Rejected", color = "#ff7f0e" }]),
          concat(local.service_metric.EventsRetried, [{ label = "Retried", color = "#9467bd" }]),
          concat(local.service_metric.EventsDeadLettered, [{ label = "Dead-lettered", color = "#d62728" }]),
        ]
      }
    },
    {
      type   = "metric"
      x      = 8
      y      = 5
      width  = 8
      height = 6
      properties = {
        title   = "Rejections by reason (per minute)"
        region  = local.region
        view    = "timeSeries"
        stacked = true
        stat    = "Sum"
        period  = 60
        yAxis   = { left = { min = 0 } }
        metrics = [for reason in local.rejection_reasons :
          concat(local.service_metric.EventsRejected, ["Reason", reason, { label = reason }])
        ]
      }
    },
    {
      type   = "metric"
      x      = 16
      y      = 5
      width  = 8
      height = 6
      properties = {
        title   = "Batch processing latency (ms)"
        region  = local.region
        view    = "timeSeries"
        stacked = false
        period  = 60
        yAxis   = { left = { min = 0, label = "Milliseconds", showUnits = false } }
        metrics = [
          concat(local.service_metric.ProcessingLatency, [{ stat = "p50", label = "p50" }]),
          concat(local.service_metric.ProcessingLatency, [{ stat = "p90", label = "p90" }]),
          concat(local.service_metric.ProcessingLatency, [{ stat = "p99", label = "p99" }]),
        ]
      }
    },
    {
      type   = "metric"
      x      = 0
      y      = 11
      width  = 8
      height = 6
      properties = {
        title   = "Queue depth"
        region  = local.region
        view    = "timeSeries"
        stacked = false
        stat    = "Maximum"
        period  = 60
        yAxis   = { left = { min = 0 } }
        metrics = [
          ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", local.queue_name, { label = "Queue: waiting" }],
          ["AWS/SQS", "ApproximateNumberOfMessagesNotVisible", "QueueName", local.queue_name, { label = "Queue: in flight" }],
          ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", local.dlq_name, { label = "DLQ: waiting", color = "#d62728" }],
        ]
      }
    },
    {
      type   = "metric"
      x      = 8
      y      = 11
      width  = 8
      height = 6
      properties = {
        title   = "Age of oldest message (s)"
        region  = local.region
        view    = "timeSeries"
        stacked = false
        stat    = "Maximum"
        period  = 60
        yAxis   = { left = { min = 0 } }
        metrics = [
          ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", local.queue_name, { label = "Queue" }],
          ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", local.dlq_name, { label = "DLQ", color = "#d62728" }],
        ]
        annotations = {
          horizontal = [{ label = "Alarm", value = var.oldest_message_age_alarm_seconds }]
        }
      }
    },
    {
      type   = "metric"
      x      = 16
      y      = 11
      width  = 8
      height = 6
      properties = {
        title   = "Amount consumed (per minute)"
        region  = local.region
        view    = "timeSeries"
        stacked = false
        stat    = "Sum"
        period  = 60
        yAxis   = { left = { min = 0 } }
        metrics = [
          concat(local.service_metric.AmountConsumed, [{ label = "Amount consumed" }]),
        ]
      }
    },
    {
      type   = "metric"
      x      = 0
      y      = 17
      width  = 8
      height = 6
      properties = {
        title   = "Function duration (ms)"
        region  = local.region
        view    = "timeSeries"
        stacked = false
        period  = 60
        yAxis   = { left = { min = 0 } }
        metrics = [
          concat(local.lambda_metric.Duration, [{ stat = "p50", label = "p50" }]),
          concat(local.lambda_metric.Duration, [{ stat = "p99", label = "p99" }]),
        ]
        annotations = {
          horizontal = [{ label = "Timeout", value = var.timeout * 1000 }]
        }
      }
    },
    {
      type   = "metric"
      x      = 8
      y      = 17
      width  = 8
      height = 6
      properties = {
        title   = "Invocations, errors and throttles"
        region  = local.region
        view    = "timeSeries"
        stacked = false
        stat    = "Sum"
        period  = 60
        yAxis   = { left = { min = 0 } }
        metrics = [
          concat(local.lambda_metric.Invocations, [{ label = "Invocations", color = "#1f77b4" }]),
          concat(local.lambda_metric.Errors, [{ label = "Errors", color = "#d62728" }]),
          concat(local.lambda_metric.Throttles, [{ label = "Throttles", color = "#ff7f0e" }]),
        ]
      }
    },
    {
      type   = "metric"
      x      = 16
      y      = 17
      width  = 8
      height = 6
      properties = {
        title   = "Concurrent executions"
        region  = local.region
        view    = "timeSeries"
        stacked = false
        stat    = "Maximum"
        period  = 60
        yAxis   = { left = { min = 0 } }
        metrics = [
          concat(local.lambda_metric.ConcurrentExecutions, [{ label = "Concurrent executions" }]),
        ]
        annotations = {
          horizontal = [{ label = "Event source maximum", value = var.maximum_concurrency }]
        }
      }
    },
    {
      type   = "log"
      x      = 0
      y      = 23
      width  = 24
      height = 6
      properties = {
        title  = "Recent warnings and errors"
        region = local.region
        view   = "table"
        query  = "SOURCE '${local.log_group_name}' | fields @timestamp, level, msg, @message | filter level in [\"WARN\", \"ERROR\"] | sort @timestamp desc | limit 50"
      }
    },
    {
      type   = "metric"
      x      = 0
      y      = 29
      width  = 12
      height = 6
      properties = {
        title   = "Holds (per minute)"
        region  = local.region
        view    = "timeSeries"
        stacked = false
        stat    = "Sum"
        period  = 60
        yAxis   = { left = { min = 0 } }
        metrics = concat([for line in [
          concat(local.decisions_metric.HoldsReserved, [{ label = "Reserved", color = "#1f77b4" }]),
          concat(local.decisions_metric.HoldsCommitted, [{ label = "Committed (decided now)", color = "#98df8a" }]),
          concat(local.decisions_metric.HoldsReleased, [{ label = "Released (decided now)", color = "#ffbb78" }]),
          ] : line if var.decisions_enabled], [
          concat(local.service_metric.HoldsCommitted, [{ label = "Committed (queue)", color = "#2ca02c" }]),
          concat(local.service_metric.HoldsReleased, [{ label = "Released (queue)", color = "#ff7f0e" }]),
          concat(local.service_metric.HoldsExpired, [{ label = "Expired (released by the sweep)", color = "#d62728" }]),
        ])
      }
    },
    {
      type   = "metric"
      x      = 12
      y      = 29
      width  = 12
      height = 6
      properties = {
        title   = "Hold sweeps: oldest expired hold (s), failed sweeps"
        region  = local.region
        view    = "timeSeries"
        stacked = false
        stat    = "Maximum"
        period  = 60
        yAxis   = { left = { min = 0, label = "Seconds", showUnits = false }, right = { min = 0, label = "Failed", showUnits = false } }
        metrics = [
          concat(local.service_metric.OldestExpiredHoldAge, [{ label = "Oldest expired, not released" }]),
          concat(local.service_metric.HoldSweepsFailed, [{ stat = "Sum", yAxis = "right", label = "Failed sweeps", color = "#d62728" }]),
          concat(local.service_metric.HoldsDeferred, [{ stat = "Sum", yAxis = "right", label = "Set aside (cannot be settled)", color = "#9467bd" }]),
        ]
        annotations = {
          horizontal = [{ label = "Alarm", value = local.hold_release_alarm_seconds }]
        }
      }
    },
  ], local.notification_widgets)

  # With notifications_enabled: what the queue consumer recorded, published
  # and failed to publish, and how old the oldest unpublished one is.
  # (A filtering for expression rather than a conditional: the two widgets
  # differ in shape, so "enabled ? [...] : []" has no single result type.)
  notification_widgets = [for w in [
    {
      type   = "metric"
      x      = 0
      y      = 35
      width  = 12
      height = 6
      properties = {
        title   = "Notifications (per minute)"
        region  = local.region
        view    = "timeSeries"
        stacked = false
        stat    = "Sum"
        period  = 60
        yAxis   = { left = { min = 0 } }
        metrics = [
          concat(local.service_metric.NotificationsRecorded, [{ label = "Recorded", color = "#1f77b4" }]),
          concat(local.service_metric.NotificationsPublished, [{ label = "Published", color = "#2ca02c" }]),
          concat(local.service_metric.NotificationsFailed, [{ label = "Publication failed", color = "#d62728" }]),
        ]
      }
    },
    {
      type   = "metric"
      x      = 12
      y      = 35
      width  = 12
      height = 6
      properties = {
        title   = "Oldest unpublished notification (s)"
        region  = local.region
        view    = "timeSeries"
        stacked = false
        stat    = "Maximum"
        period  = 60
        yAxis   = { left = { min = 0 } }
        metrics = [
          concat(local.service_metric.OldestUnpublishedNotificationAge, [{ label = "Oldest unpublished" }]),
        ]
        annotations = {
          horizontal = [{ label = "Alarm", value = var.oldest_unpublished_notification_alarm_seconds }]
        }
      }
    },
  ] : w if var.notifications_enabled]
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = local.dashboard_name
  dashboard_body = jsonencode({ widgets = local.dashboard_widgets })
}
