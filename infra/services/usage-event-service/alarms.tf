# Every alarm notifies var.alarm_actions when it fires and when it recovers.
# treat_missing_data = "notBreaching" throughout: SQS stops publishing for a
# queue that is empty and idle, and Lambda publishes Errors/Throttles only
# while invoked, so missing data means "nothing happening", not "broken".

resource "aws_cloudwatch_metric_alarm" "dlq_not_empty" {
  alarm_name          = "${local.function_name}-dlq-not-empty"
  alarm_description   = "Messages are waiting in ${local.dlq_name}: events were rejected or kept failing. See the dashboard ${local.dashboard_name} (Rejections by reason, Recent warnings and errors), fix the cause, then redrive the DLQ to ${local.queue_name}."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dead_letter.name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "queue_oldest_message_age" {
  alarm_name          = "${local.function_name}-queue-backlog-age"
  alarm_description   = "The oldest message in ${local.queue_name} has waited more than ${var.oldest_message_age_alarm_seconds}s: the function is failing, throttled or cannot keep up. Check Errors, Throttles and Concurrent executions on the dashboard ${local.dashboard_name}."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = aws_sqs_queue.main.name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 3
  datapoints_to_alarm = 3
  threshold           = var.oldest_message_age_alarm_seconds
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = local.tags

  lifecycle {
    precondition {
      condition     = var.oldest_message_age_alarm_seconds < var.message_retention_seconds
      error_message = "oldest_message_age_alarm_seconds must be below message_retention_seconds, or messages expire before the alarm can fire."
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "function_errors" {
  alarm_name          = "${local.function_name}-errors"
  alarm_description   = "${local.function_name} failed whole invocations (timeouts, crashes, invalid batch responses); per-event failures are reported as partial batch failures and do not count here. See Recent warnings and errors on the dashboard ${local.dashboard_name}."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.this.function_name }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "function_throttles" {
  alarm_name          = "${local.function_name}-throttles"
  alarm_description   = "${local.function_name} was throttled: the account or reserved concurrency is below the event source's maximum concurrency (${var.maximum_concurrency}). Messages wait in ${local.queue_name} meanwhile."
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = { FunctionName = aws_lambda_function.this.function_name }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = local.tags
}

# The outbox is draining: publication right after the write normally leaves
# nothing behind, and the recovery sweep (every minute) publishes what it
# did. An unpublished notification older than the threshold means the
# topic keeps refusing (permissions, the key policy, throttling) or the
# sweep does not run. The consumer measures it at each sweep, as the EMF
# metric OldestUnpublishedNotificationAge (seconds).
resource "aws_cloudwatch_metric_alarm" "notifications_unpublished" {
  count = var.notifications_enabled ? 1 : 0

  alarm_name          = "${local.function_name}-notifications-unpublished"
  alarm_description   = "A usage notification recorded in ${local.ledger_table_name} has waited more than ${var.oldest_unpublished_notification_alarm_seconds}s to be published to ${local.notifications_topic_name}. Check NotificationsFailed and Recent warnings and errors on the dashboard ${local.dashboard_name} (sns:Publish or KMS denied, throttling), and that the schedule ${local.sweep_rule_name} invokes ${local.function_name}; usagectl notifications --user <id> shows what is unpublished."
  namespace           = local.metric_namespace
  metric_name         = "OldestUnpublishedNotificationAge"
  dimensions          = { FunctionName = aws_lambda_function.this.function_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  threshold           = var.oldest_unpublished_notification_alarm_seconds
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = local.tags
}

# Expired holds are being released: each sweep (every minute, on the
# sweeps' schedule) measures how long the oldest expired but still active
# hold it found had been due, as the EMF metric OldestExpiredHoldAge
# (seconds; 0 when none), and releases it; a hold is normally released
# within about a minute of expiring. Above 300 s for two minutes, expired
# holds keep counting as used: the sweeps find them but cannot release them
# (throttled or denied ledger writes), or no sweep runs at all. Every sweep
# reports the age, so here missing data is breaching: no data means no
# sweep (the schedule disabled or deleted, the consumer failing or throttled
# on its scheduled invocations).
resource "aws_cloudwatch_metric_alarm" "holds_unreleased" {
  alarm_name          = "${local.function_name}-holds-unreleased"
  alarm_description   = "An expired hold in ${local.ledger_table_name} has waited more than ${local.hold_release_alarm_seconds}s to be released, or no hold sweep has run (no OldestExpiredHoldAge): expired holds still count as used. Check that the schedule ${local.sweep_rule_name} is enabled and invokes ${local.function_name}, its Errors and Throttles, and Recent warnings and errors (hold sweep failed) on the dashboard ${local.dashboard_name}; usagectl holds --user <id> --key <key> shows the overdue holds, usagectl release releases one by hand."
  namespace           = local.metric_namespace
  metric_name         = "OldestExpiredHoldAge"
  dimensions          = { FunctionName = aws_lambda_function.this.function_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 2
  datapoints_to_alarm = 2
  threshold           = local.hold_release_alarm_seconds
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = local.tags
}

# The sweeps cannot even look for expired holds: the Query of the ledger's
# index "pending" fails (the index missing, Query on it denied, throttled).
# Such a sweep reports OldestExpiredHoldAge 0 (it found nothing), so the
# alarm above stays quiet; each failed sweep counts HoldSweepsFailed 1.
# Three failed minutes in a row is not a blip.
resource "aws_cloudwatch_metric_alarm" "hold_sweeps_failing" {
  alarm_name          = "${local.function_name}-hold-sweeps-failing"
  alarm_description   = "The hold sweeps of ${local.function_name} have failed for 3 minutes: expired holds in ${local.ledger_table_name} are not found, so not released. See Recent warnings and errors (hold sweep failed) on the dashboard ${local.dashboard_name}: the ledger's index pending missing, dynamodb:Query on ${local.ledger_table_name}/index/pending denied, or throttling."
  namespace           = local.metric_namespace
  metric_name         = "HoldSweepsFailed"
  dimensions          = { FunctionName = aws_lambda_function.this.function_name }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 3
  datapoints_to_alarm = 3
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = local.tags
}

# Expired holds the sweeps cannot settle: their entitlement cannot be
# interpreted (INVALID_ENTITLEMENT) or their own ledger entry cannot be
# read. Each is set aside for an hour and tried again, so that it never
# blocks the release of other holds; while it stays, its amount still
# counts as used. Any in an hour needs a person.
resource "aws_cloudwatch_metric_alarm" "holds_deferred" {
  alarm_name          = "${local.function_name}-holds-set-aside"
  alarm_description   = "The hold sweeps of ${local.function_name} set expired holds aside that they cannot settle (the entitlement cannot be interpreted, or the hold's ledger entry in ${local.ledger_table_name} cannot be read). See the expired holds set aside lines on the dashboard ${local.dashboard_name}; repair the item and the next try (within an hour) releases the hold."
  namespace           = local.metric_namespace
  metric_name         = "HoldsDeferred"
  dimensions          = { FunctionName = aws_lambda_function.this.function_name }
  statistic           = "Sum"
  period              = 3600
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = local.tags
}

locals {
  # The hold sweep runs every minute: an expired hold is normally released
  # within a minute or two. 300 s leaves room for a few slow sweeps.
  hold_release_alarm_seconds = 300
}
