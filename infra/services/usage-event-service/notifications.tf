# Usage notifications (docs/notifications.md). Both functions decide them in
# the write that causes them, record them in the ledger's outbox and publish
# them to this topic right after the write; what is left unpublished (the
# publication failed, or the process died in between) is published by the
# recovery sweep, which the schedule (schedule.tf) runs in the queue
# consumer every minute.
#
# Everything here has count = 0 when var.notifications_enabled is false.
#
# A standard topic by default. With notifications_fifo a FIFO topic: the
# functions publish each notification with its scope as the message group
# (one user's entitlement's notifications stay in order) and its
# notificationId as the deduplication ID, so SNS drops a repeat published
# within its 5-minute deduplication window (a sweep re-publishing what was
# published but not marked); subscribers are then SQS queues only, and
# still drop a later repeat by notificationId.

resource "aws_sns_topic" "notifications" {
  count = var.notifications_enabled ? 1 : 0

  name              = local.notifications_topic_name
  fifo_topic        = var.notifications_fifo
  kms_master_key_id = local.notifications_kms_key_id
  tags              = local.tags

  lifecycle {
    precondition {
      condition     = local.notify_recovery_interval_seconds >= 1 && local.notify_recovery_interval_seconds <= 86400
      error_message = "notify_recovery_interval must be from 1s to 24h, as the functions accept it."
    }
  }
}

data "aws_iam_policy_document" "notifications_topic" {
  count = var.notifications_enabled ? 1 : 0

  # Subscribers in this account subscribe with their own identity policies
  # (sns:Subscribe on the topic ARN); this states that intent on the topic
  # and admits no other account. As for the queue, aws:PrincipalAccount is
  # the key present on calls by IAM principals.
  statement {
    sid       = "AllowSubscribeFromThisAccount"
    effect    = "Allow"
    actions   = ["sns:Subscribe"]
    resources = [aws_sns_topic.notifications[0].arn]

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

  # Wildcard required by AWS: a Deny for every caller needs principal "*".
  # sns:Publish is the one action that carries message data in.
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.notifications[0].arn]

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

resource "aws_sns_topic_policy" "notifications" {
  count = var.notifications_enabled ? 1 : 0

  arn    = aws_sns_topic.notifications[0].arn
  policy = data.aws_iam_policy_document.notifications_topic[0].json
}
