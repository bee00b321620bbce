data "aws_iam_policy_document" "assume_role" {
  statement {
    sid     = "LambdaAssumeRole"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "function" {
  name                 = local.function_name
  description          = "Execution role of ${local.function_name}."
  assume_role_policy   = data.aws_iam_policy_document.assume_role.json
  max_session_duration = 3600
  tags                 = local.tags
}

# Least privilege, one statement per resource. Deliberately no
# AWSLambdaBasicExecutionRole: it grants logs:CreateLogGroup on "*".
# The only wildcards are the log-stream suffix, see WriteOwnLogs, and,
# with tracing to X-Ray, the resource of X-Ray's write actions (WriteTraces).
data "aws_iam_policy_document" "function" {
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

  statement {
    sid       = "ConsumeUsageEventQueue"
    effect    = "Allow"
    actions   = local.sqs_consume_actions
    resources = [aws_sqs_queue.main.arn]
  }

  dynamic "statement" {
    for_each = var.direct_dead_lettering ? ["dead-letter"] : []

    content {
      sid       = "DeadLetterRejectedEvents"
      effect    = "Allow"
      actions   = ["sqs:SendMessage"]
      resources = [aws_sqs_queue.dead_letter.arn]
    }
  }

  # The sweeps (schedule.tf) find their work with a Query of the ledger's
  # sparse index "pending": a grant on the table does not cover its indexes.
  statement {
    sid       = "QueryPendingIndex"
    effect    = "Allow"
    actions   = ["dynamodb:Query"]
    resources = ["${aws_dynamodb_table.ledger.arn}/index/${local.pending_index_name}"]
  }

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
      sid = "UseNotificationsKey"
      # What publishing to a topic encrypted with a customer managed key
      # needs, only through SNS.
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
    # Wildcard required by AWS: Lambda names each log stream at run time
    # (date/[version]id), so streams can only be granted as "<group ARN>:*".
    # It covers the streams of this one log group and nothing else.
    resources = ["${aws_cloudwatch_log_group.function.arn}:*"]
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : ["queue-key"]

    content {
      sid    = "UseQueueKey"
      effect = "Allow"
      # Decrypt to receive from the main queue; GenerateDataKey (and Decrypt)
      # to send to the DLQ when the function dead-letters directly.
      actions   = var.direct_dead_lettering ? ["kms:Decrypt", "kms:GenerateDataKey"] : ["kms:Decrypt"]
      resources = [var.kms_key_arn]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["sqs.${local.region}.amazonaws.com"]
      }
    }
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

resource "aws_iam_role_policy" "function" {
  name   = "${local.function_name}-least-privilege"
  role   = aws_iam_role.function.id
  policy = data.aws_iam_policy_document.function.json
}
