# Created before the function (depends_on below) so that Lambda never creates
# it implicitly with infinite retention, and so that the role needs no
# logs:CreateLogGroup.
resource "aws_cloudwatch_log_group" "function" {
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  tags              = local.tags
}

resource "aws_lambda_function" "this" {
  function_name    = local.function_name
  description      = "Applies usage events from ${local.queue_name} to the entitlements table and records them in ${local.ledger_table_name}."
  role             = aws_iam_role.function.arn
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = [var.architecture]
  filename         = var.package_path
  source_code_hash = filebase64sha256(var.package_path)
  memory_size      = var.memory_size
  timeout          = var.timeout

  layers = local.function_layers

  environment {
    variables = local.function_environment
  }

  # X-Ray active tracing (xray_tracing): Lambda's own segments per
  # invocation. The service's spans go to OTLP (README: Tracing).
  dynamic "tracing_config" {
    for_each = var.xray_tracing ? ["active"] : []
    content {
      mode = "Active"
    }
  }

  # JSON: the binary already writes one JSON object per line (slog, and the
  # CloudWatch Embedded Metric Format records). Lambda does not re-encode
  # lines that are already JSON, so they and their EMF metrics arrive
  # unchanged, while Lambda's own START/END/REPORT records become JSON too:
  # the whole log group is then queryable by field in Logs Insights.
  # application_log_level is deliberately unset: LOG_LEVEL filters in the
  # binary, and Lambda-side filtering would drop EMF records (they carry no
  # level).
  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.function.name
  }

  tags = local.tags

  depends_on = [
    aws_cloudwatch_log_group.function,
    aws_iam_role_policy.function,
  ]

  lifecycle {
    precondition {
      # An event redriven from the DLQ must still find its ledger record, or
      # it would be applied twice; and the function refuses less than 1h.
      condition     = local.dedup_retention_seconds >= max(3600, var.dlq_message_retention_seconds)
      error_message = "dedup_retention must be at least 1h and at least dlq_message_retention_seconds (e.g. \"336h\" or \"14d\" for the default 14-day DLQ retention)."
    }
    precondition {
      condition     = endswith(var.entitlements_table_arn, ":table/${var.entitlements_table_name}")
      error_message = "entitlements_table_arn must be the ARN of entitlements_table_name."
    }
    precondition {
      # The function refuses to start with one attribute for both keys.
      condition     = var.entitlement_pk_attribute != var.entitlement_sk_attribute
      error_message = "entitlement_sk_attribute must differ from entitlement_pk_attribute."
    }
  }
}

resource "aws_lambda_event_source_mapping" "queue" {
  event_source_arn = aws_sqs_queue.main.arn
  function_name    = aws_lambda_function.this.arn
  batch_size       = local.batch_size
  # Lambda has no batching window on FIFO queues: left unset there.
  maximum_batching_window_in_seconds = var.fifo_queue ? null : local.batching_window_seconds
  function_response_types            = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.maximum_concurrency
  }

  tags = local.tags

  # Lambda checks the role's SQS permissions when the mapping is created.
  depends_on = [aws_iam_role_policy.function]

  lifecycle {
    precondition {
      condition     = local.batch_size <= 10 || local.batching_window_seconds >= 1
      error_message = "batch_size above 10 requires maximum_batching_window_in_seconds of at least 1."
    }
    precondition {
      condition     = !var.fifo_queue || local.batch_size <= 10
      error_message = "On a FIFO queue (fifo_queue) Lambda takes at most 10 messages a batch: set batch_size to 10 or less, or leave it unset."
    }
    precondition {
      condition     = !var.fifo_queue || local.batching_window_seconds == 0
      error_message = "On a FIFO queue (fifo_queue) Lambda has no batching window: leave maximum_batching_window_in_seconds unset, or 0."
    }
  }
}
