# The decisions function: the same package as the queue consumer, invoked
# directly (Lambda Invoke, RequestResponse) with one consume, refund or
# balance request and answering with the decision. The binary tells the two
# kinds of payload apart by shape; this is a separate function rather than
# the consumer itself so that
#   - its role carries no SQS (and no queue key) grant: a caller that may
#     invoke it reaches DynamoDB only;
#   - its concurrency is its own: optional reserved concurrency both
#     guarantees synchronous callers capacity and caps them, so a burst of
#     requests cannot take the concurrency the queue consumer needs, nor a
#     backlog the concurrency callers wait on;
#   - its logs, errors and throttles are its own log group and metrics.
#
# Everything here has count = 0 when var.decisions_enabled is false.

resource "aws_cloudwatch_log_group" "decisions" {
  count = var.decisions_enabled ? 1 : 0

  name              = local.decisions_log_group_name
  retention_in_days = var.log_retention_days
  tags              = local.tags
}

resource "aws_iam_role" "decisions" {
  count = var.decisions_enabled ? 1 : 0

  name                 = local.decisions_function_name
  description          = "Execution role of ${local.decisions_function_name}."
  assume_role_policy   = data.aws_iam_policy_document.assume_role.json
  max_session_duration = 3600
  tags                 = local.tags
}

# Least privilege as for the consumer's role (iam.tf), minus everything the
# queue and the recovery sweep need: the DynamoDB actions of
# dynamodb.IAMActions on the two tables (but not the index Query), sns:Publish
# on the notifications topic (and its customer managed key, through SNS), and
# its own log streams. No other KMS statement: the ledger table is encrypted
# with the AWS managed key (aws/dynamodb), whose key policy already lets
# DynamoDB use it on behalf of any principal of the account, and the queue
# key is for SQS only.
data "aws_iam_policy_document" "decisions" {
  count = var.decisions_enabled ? 1 : 0

  statement {
    sid       = "UseEntitlementsTable"
    effect    = "Allow"
    actions   = local.dynamodb_actions.entitlements
    resources = [var.entitlements_table_arn]
  }

  statement {
    sid       = "UseLedgerTable"
    effect    = "Allow"
    actions   = local.dynamodb_actions.ledger
    resources = [aws_dynamodb_table.ledger.arn]
  }

  # It decides and records notifications like the consumer and publishes
  # them right after its write; the recovery sweep (and so the index Query)
  # runs in the consumer only.
  dynamic "statement" {
    for_each = var.notifications_enabled ? ["publish"] : []

    content {
      sid       = "PublishNotifications"
      effect    = "Allow"
      actions   = ["sns:Publish"]
      resources = [aws_sns_topic.notifications[0].arn]
    }
  }

  dynamic "statement" {
    for_each = var.notifications_enabled && var.notifications_kms_key_arn != null ? ["notifications-key"] : []

    content {
      sid       = "UseNotificationsKey"
      effect    = "Allow"
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = [var.notifications_kms_key_arn]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["sns.${local.region}.amazonaws.com"]
      }
    }
  }

  statement {
    sid     = "WriteOwnLogs"
    effect  = "Allow"
    actions = ["logs:CreateLogStream", "logs:PutLogEvents"]
    # Wildcard required by AWS, as for the consumer: Lambda names each log
    # stream at run time, so only "<group ARN>:*" can grant them.
    resources = ["${aws_cloudwatch_log_group.decisions[0].arn}:*"]
  }

  dynamic "statement" {
    for_each = local.xray_write ? ["xray"] : []

    content {
      sid    = "WriteTraces"
      effect = "Allow"
      # Wildcard required by AWS: X-Ray's write actions have no
      # resource-level permissions, "*" is the only resource they take.
      actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
      resources = ["*"]
    }
  }
}

resource "aws_iam_role_policy" "decisions" {
  count = var.decisions_enabled ? 1 : 0

  name   = "${local.decisions_function_name}-least-privilege"
  role   = aws_iam_role.decisions[0].id
  policy = data.aws_iam_policy_document.decisions[0].json
}

resource "aws_lambda_function" "decisions" {
  count = var.decisions_enabled ? 1 : 0

  function_name    = local.decisions_function_name
  description      = "Answers synchronous consume, refund and balance requests (Lambda Invoke) against the entitlements table and ${local.ledger_table_name}."
  role             = aws_iam_role.decisions[0].arn
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = [var.architecture]
  filename         = var.package_path
  source_code_hash = filebase64sha256(var.package_path)
  memory_size      = var.memory_size
  timeout          = var.timeout

  # -1 is Lambda's "unreserved": the function draws on the account's shared
  # pool, without a guarantee and without a cap.
  reserved_concurrent_executions = var.decisions_reserved_concurrency == null ? -1 : var.decisions_reserved_concurrency

  layers = local.function_layers

  environment {
    variables = local.shared_environment
  }

  dynamic "tracing_config" {
    for_each = var.xray_tracing ? ["active"] : []
    content {
      mode = "Active"
    }
  }

  # As for the consumer (lambda.tf): the binary's JSON lines pass through
  # unchanged, Lambda's own records become JSON, LOG_LEVEL filters.
  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.decisions[0].name
  }

  tags = local.tags

  depends_on = [
    aws_cloudwatch_log_group.decisions,
    aws_iam_role_policy.decisions,
  ]
}
