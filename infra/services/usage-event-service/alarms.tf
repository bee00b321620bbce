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
