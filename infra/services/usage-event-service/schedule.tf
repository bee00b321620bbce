# The queue consumer's periodic work: EventBridge invokes it every minute
# with its own scheduled event ("source": "aws.events"), which the binary
# tells from an SQS batch by its shape and answers by running its sweeps:
# the notifications' recovery sweep (with notifications_enabled: it
# publishes what the ledger's outbox still holds unpublished) and the
# release of expired holds (README, Holds). Both find their work in the
# ledger's sparse index "pending" (iam.tf, QueryPendingIndex). The schedule
# stays without notifications, for the holds.

resource "aws_cloudwatch_event_rule" "sweeps" {
  name                = local.sweep_rule_name
  description         = "Runs the periodic sweeps of ${local.function_name} every minute (notifications' recovery, expired holds)."
  schedule_expression = "rate(1 minute)"
  tags                = local.tags
}

resource "aws_cloudwatch_event_target" "sweeps" {
  rule = aws_cloudwatch_event_rule.sweeps.name
  arn  = aws_lambda_function.this.arn
  # No input: the function gets EventBridge's own scheduled event.
}

# EventBridge may invoke the consumer, for this rule only.
resource "aws_lambda_permission" "sweeps" {
  statement_id  = "AllowSweepSchedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.sweeps.arn
}
