# Both queues are encrypted at rest: SSE-SQS (SQS-managed keys) unless a
# customer managed KMS key is given, in which case SSE-KMS with that key.

# With fifo_queue both are FIFO queues (a FIFO queue's dead-letter queue
# must be one too); the main queue in high-throughput mode (deduplication
# and the throughput quota per message group, that is per entitlement).
# Deduplication IDs come from the producers (their idempotency keys), not
# from the body.

resource "aws_sqs_queue" "dead_letter" {
  name                      = local.dlq_name
  fifo_queue                = var.fifo_queue ? true : null
  message_retention_seconds = var.dlq_message_retention_seconds
  sqs_managed_sse_enabled   = var.kms_key_arn == null ? true : null
  kms_master_key_id         = var.kms_key_arn
  tags                      = local.tags
}

resource "aws_sqs_queue" "main" {
  name                        = local.queue_name
  fifo_queue                  = var.fifo_queue ? true : null
  content_based_deduplication = var.fifo_queue ? false : null
  deduplication_scope         = var.fifo_queue ? "messageGroup" : null
  fifo_throughput_limit       = var.fifo_queue ? "perMessageGroupId" : null
  visibility_timeout_seconds  = local.visibility_timeout_seconds
  message_retention_seconds   = var.message_retention_seconds
  receive_wait_time_seconds   = 20
  sqs_managed_sse_enabled     = var.kms_key_arn == null ? true : null
  kms_master_key_id           = var.kms_key_arn

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letter.arn
    maxReceiveCount     = var.max_receive_count
  })

  tags = local.tags

  lifecycle {
    precondition {
      # A standard queue keeps a message's original enqueue timestamp when it
      # is moved to the DLQ, so a DLQ with a shorter retention would delete
      # dead-lettered messages on arrival.
      condition     = var.dlq_message_retention_seconds >= var.message_retention_seconds
      error_message = "dlq_message_retention_seconds must be at least message_retention_seconds."
    }
  }
}

# Only the main queue may dead-letter into the DLQ, and the DLQ can be
# redriven back to it (StartMessageMoveTask) once the cause is fixed.
resource "aws_sqs_queue_redrive_allow_policy" "dead_letter" {
  queue_url = aws_sqs_queue.dead_letter.id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.main.arn]
  })
}

data "aws_iam_policy_document" "main_queue" {
  # Producers in this account send with their own identity policies; this
  # statement states that intent on the queue and admits no other account.
  # aws:PrincipalAccount (not aws:SourceAccount) is the key present on calls
  # by IAM principals; aws:SourceAccount is only set for service principals.
  statement {
    sid       = "AllowSendFromThisAccount"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.main.arn]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:PrincipalAccount"
      values   = [local.account_id]
    }
  }

  # Wildcards required by AWS: a Deny that must apply to every caller needs
  # principal "*" (there is no other way to name all principals), and
  # "sqs:*" so that no action, present or future, is reachable without TLS.
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.main.arn]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

data "aws_iam_policy_document" "dead_letter_queue" {
  # Same TLS-only Deny as the main queue (principal "*" and "sqs:*" are
  # required for a deny-everyone statement, see above). The function's own
  # sends are allowed by its identity policy.
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.dead_letter.arn]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sqs_queue_policy" "main" {
  queue_url = aws_sqs_queue.main.id
  policy    = data.aws_iam_policy_document.main_queue.json
}

resource "aws_sqs_queue_policy" "dead_letter" {
  queue_url = aws_sqs_queue.dead_letter.id
  policy    = data.aws_iam_policy_document.dead_letter_queue.json
}
