data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  name_prefix       = "${var.project}-${var.env}"
  function_name     = "${local.name_prefix}-usage-event-service"
  queue_suffix      = var.fifo_queue ? ".fifo" : ""
  queue_name        = "${local.name_prefix}-usage-event-queue${local.queue_suffix}"
  dlq_name          = "${local.name_prefix}-usage-event-dlq${local.queue_suffix}"
  ledger_table_name = "${local.name_prefix}-usage-ledger"
  log_group_name    = "/aws/lambda/${local.function_name}"
  # Not "<function_name>-decisions": with the longest project and env that
  # would pass Lambda's and IAM's 64-character limit for function and role
  # names; this stays within it (at most 53 characters).
  decisions_function_name  = "${local.name_prefix}-usage-decisions"
  decisions_log_group_name = "/aws/lambda/${local.decisions_function_name}"
  dashboard_name           = local.function_name
  # A FIFO topic's name must end in .fifo; the functions tell a FIFO topic
  # by it, and then set each message's group and deduplication IDs.
  notifications_topic_name = "${local.name_prefix}-usage-notifications${var.notifications_fifo ? ".fifo" : ""}"
  # EventBridge rule names are limited to 64 characters: this one fits with
  # the longest project and env (at most 50).
  sweep_rule_name = "${local.name_prefix}-usage-sweeps"

  # The ledger's sparse index of work left to do (unpublished notifications,
  # active holds), as dynamodb.CreateLedgerTable creates it
  # (dynamodb.PendingIndex); the queue consumer's sweeps query it.
  # infra/module_test.go ties the two.
  pending_index_name = "pending"

  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  tags = merge({
    Service     = "usage-event-service"
    Environment = var.env
  }, var.tags)

  # Batching. The defaults were chosen from the benchmark
  # (docs/performance.md): on a standard queue batches of up to 100 with a
  # 1 s window, so that one entitlement's events share a transaction; a
  # FIFO queue's event source takes at most 10 and no window.
  batch_size              = var.batch_size != null ? var.batch_size : (var.fifo_queue ? 10 : 100)
  batching_window_seconds = var.maximum_batching_window_in_seconds != null ? var.maximum_batching_window_in_seconds : (var.fifo_queue ? 0 : 1)

  # AWS: "set the source queue's visibility timeout to at least six times the
  # timeout that you configure on your function", plus the batching window,
  # so a batch that is retried inside the function is not redelivered
  # to another invocation meanwhile.
  visibility_timeout_seconds = 6 * var.timeout + local.batching_window_seconds

  # var.dedup_retention (a Go duration, or whole days "14d", as the function's
  # config.ParseRetention reads it) in seconds, for the precondition that
  # deduplication outlives anything the DLQ can hand back.
  duration_unit_seconds = {
    d    = 86400
    h    = 3600
    m    = 60
    s    = 1
    ms   = 0.001
    us   = 0.000001
    "µs" = 0.000001
    "μs" = 0.000001
    ns   = 0.000000001
  }
  dedup_retention_seconds = sum(concat([0], [
    for part in regexall("([0-9]+(?:\\.[0-9]+)?)(ns|us|µs|μs|ms|s|m|h|d)", var.dedup_retention) :
    tonumber(part[0]) * local.duration_unit_seconds[part[1]]
  ]))
  # var.notify_recovery_interval in seconds, for the precondition that it
  # is within what the functions accept (1s to 24h).
  notify_recovery_interval_seconds = sum(concat([0], [
    for part in regexall("([0-9]+(?:\\.[0-9]+)?)(ns|us|µs|μs|ms|s|m|h)", var.notify_recovery_interval) :
    tonumber(part[0]) * local.duration_unit_seconds[part[1]]
  ]))

  # The DynamoDB actions the function's requests need, per table. Keys are the
  # Go dynamodb.Table values; infra/module_test.go fails when this drifts from
  # dynamodb.IAMActions (dynamodb/actions.go), the single source of truth.
  dynamodb_actions = {
    entitlements = ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"]
    ledger       = ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem", "dynamodb:Query"]
  }

  # The notifications topic's key: the customer managed one if given, else
  # the AWS managed alias/aws/sns (whose key policy already lets SNS use it
  # for this account's publishers, so the roles need no KMS grant for it).
  notifications_kms_key_id = var.notifications_kms_key_arn == null ? "alias/aws/sns" : var.notifications_kms_key_arn

  # What the Lambda SQS event source needs on the queue it polls.
  sqs_consume_actions = [
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:ChangeMessageVisibility",
  ]

  # What both functions read at start (internal/config): the tables, the
  # dedup retention, the log level and the entitlements table's key layout.
  # The decisions function gets exactly this; the queue consumer also its
  # queue, the refund wait and the DLQ, when it dead-letters directly.
  # Both functions also decide, record and publish notifications, so both
  # get the NOTIFY_* settings (none without notifications_enabled: with
  # NOTIFY_TOPIC_ARN unset nothing is recorded or published).
  shared_environment = merge({
    ENTITLEMENTS_TABLE       = var.entitlements_table_name
    USAGE_LEDGER_TABLE       = aws_dynamodb_table.ledger.name
    DEDUP_RETENTION          = var.dedup_retention
    LOG_LEVEL                = upper(var.log_level)
    ENTITLEMENT_PK_ATTRIBUTE = var.entitlement_pk_attribute
    ENTITLEMENT_SK_ATTRIBUTE = var.entitlement_sk_attribute
    ENTITLEMENT_PK_PREFIX    = var.entitlement_pk_prefix
    ENTITLEMENT_SK_PREFIX    = var.entitlement_sk_prefix
    POOL_PK_PREFIX           = var.pool_pk_prefix
  }, local.notify_environment, local.tracing_environment)

  # Tracing (README: Tracing): with the ADOT layer the functions export to
  # its collector on localhost:4318, OTLP/HTTP's default endpoint, so
  # OTEL_TRACES_EXPORTER=otlp is all the binary needs; tracing_environment
  # adds to it or overrides it. Nothing at all without either.
  tracing_configured = var.adot_layer_arn != null || length(keys(var.tracing_environment)) > 0
  tracing_environment = local.tracing_configured ? merge(
    { TRACE_IDS = var.trace_ids ? "true" : "false" },
    var.adot_layer_arn != null ? { OTEL_TRACES_EXPORTER = "otlp" } : {},
    var.tracing_environment,
  ) : {}
  # Lambda's active tracing and the ADOT collector both write to X-Ray.
  xray_write      = var.xray_tracing || var.adot_layer_arn != null
  function_layers = var.adot_layer_arn == null ? [] : [var.adot_layer_arn]

  notify_environment = var.notifications_enabled ? {
    NOTIFY_TOPIC_ARN         = aws_sns_topic.notifications[0].arn
    NOTIFY_THRESHOLDS        = join(",", var.notify_thresholds)
    NOTIFY_LIMIT_REJECTED    = var.notify_limit_rejected ? "true" : "false"
    NOTIFY_OVERAGE           = var.notify_overage ? "true" : "false"
    NOTIFY_RECOVERY_INTERVAL = var.notify_recovery_interval
  } : {}

  # The queue consumer also knows its queue (to stretch the redeliveries
  # of refunds that wait for their consume) and how long they wait.
  function_environment = merge(
    local.shared_environment,
    { USAGE_EVENT_QUEUE_URL = aws_sqs_queue.main.url, REFUND_TARGET_WAIT = var.refund_target_wait },
    var.direct_dead_lettering ? { DEAD_LETTER_QUEUE_URL = aws_sqs_queue.dead_letter.url } : {},
  )

  # For callers of the decisions function: exactly lambda:InvokeFunction on
  # its (unqualified) ARN, the only way the module publishes it. Written with
  # jsonencode rather than an aws_iam_policy_document so that what the tests
  # read is the JSON callers get, not a provider's rendering of it.
  decisions_invoke_policy_json = var.decisions_enabled ? jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid      = "InvokeUsageDecisions"
      Effect   = "Allow"
      Action   = "lambda:InvokeFunction"
      Resource = aws_lambda_function.decisions[0].arn
    }]
  }) : null
}
