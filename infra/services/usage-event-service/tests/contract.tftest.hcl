# The module's contract, planned against the mocked AWS provider (offline,
# no credentials): with its defaults and with each option. Run with
# `terraform test` in the module directory, or `make test`
# (scripts/terraform-check.sh). infra/module_test.go checks the same module
# from Go, against the Go code's own lists (IAM actions, metric names).

mock_provider "aws" {
  source          = "./tests/mocks"
  override_during = plan
}

variables {
  project                 = "acme"
  env                     = "prod"
  entitlements_table_name = "acme-prod-entitlements"
  entitlements_table_arn  = "arn:aws:dynamodb:eu-west-1:111122223333:table/acme-prod-entitlements"
  package_path            = "tests/testdata/function.zip"
  alarm_actions           = ["arn:aws:sns:eu-west-1:111122223333:on-call"]
}

run "defaults" {
  command = plan

  # Batches and partial batch responses.
  assert {
    condition     = aws_lambda_event_source_mapping.queue.batch_size == 100
    error_message = "The event source mapping must deliver batches of up to 100 by default (chosen from the benchmark, docs/performance.md), got ${aws_lambda_event_source_mapping.queue.batch_size}."
  }
  assert {
    condition     = aws_lambda_event_source_mapping.queue.function_response_types == toset(["ReportBatchItemFailures"])
    error_message = "The event source mapping must report partial batch failures (ReportBatchItemFailures), so only the failed messages of a batch are retried."
  }
  assert {
    condition     = aws_lambda_event_source_mapping.queue.maximum_batching_window_in_seconds == 1
    error_message = "The default batching window must be 1 s (batches above 10 need one; chosen from the benchmark, docs/performance.md)."
  }
  assert {
    condition     = aws_sqs_queue.main.fifo_queue != true && aws_sqs_queue.dead_letter.fifo_queue != true && aws_sqs_queue.main.name == "acme-prod-usage-event-queue"
    error_message = "The queues must be standard queues by default."
  }
  assert {
    condition     = aws_lambda_event_source_mapping.queue.scaling_config[0].maximum_concurrency == 10
    error_message = "The event source mapping must cap concurrency at 10 by default."
  }
  assert {
    condition     = aws_lambda_event_source_mapping.queue.event_source_arn == aws_sqs_queue.main.arn && aws_lambda_event_source_mapping.queue.function_name == aws_lambda_function.this.arn
    error_message = "The event source mapping must connect the main queue to the function."
  }

  # The function.
  assert {
    condition     = aws_lambda_function.this.runtime == "provided.al2023" && aws_lambda_function.this.handler == "bootstrap" && aws_lambda_function.this.architectures == tolist(["arm64"])
    error_message = "The function must run the bootstrap binary on provided.al2023, arm64 by default."
  }
  assert {
    condition     = aws_lambda_function.this.timeout == 30 && aws_lambda_function.this.memory_size == 256
    error_message = "The function must default to a 30 s timeout and 256 MB."
  }
  assert {
    condition = aws_lambda_function.this.environment[0].variables == tomap({
      ENTITLEMENTS_TABLE       = "acme-prod-entitlements"
      USAGE_LEDGER_TABLE       = "acme-prod-usage-ledger"
      DEDUP_RETENTION          = "336h"
      LOG_LEVEL                = "INFO"
      ENTITLEMENT_PK_ATTRIBUTE = "pk"
      ENTITLEMENT_SK_ATTRIBUTE = "sk"
      ENTITLEMENT_PK_PREFIX    = "USER#"
      ENTITLEMENT_SK_PREFIX    = "ENTITLEMENT#"
      POOL_PK_PREFIX           = "POOL#"
      DEAD_LETTER_QUEUE_URL    = "https://sqs.eu-west-1.amazonaws.com/111122223333/acme-prod-usage-event-dlq"
      USAGE_EVENT_QUEUE_URL    = "https://sqs.eu-west-1.amazonaws.com/111122223333/acme-prod-usage-event-queue"
      REFUND_TARGET_WAIT       = "15m"
      NOTIFY_TOPIC_ARN         = "arn:aws:sns:eu-west-1:111122223333:acme-prod-usage-notifications"
      NOTIFY_THRESHOLDS        = "80,100"
      NOTIFY_LIMIT_REJECTED    = "true"
      NOTIFY_OVERAGE           = "true"
      NOTIFY_RECOVERY_INTERVAL = "1m"
    })
    error_message = "Unexpected function environment: ${jsonencode(aws_lambda_function.this.environment[0].variables)}."
  }
  assert {
    condition     = local.dedup_retention_seconds >= 14 * 86400
    error_message = "The default dedup retention must be at least 14 days (336h), the DLQ's retention."
  }

  # Redrive.
  assert {
    condition     = jsondecode(aws_sqs_queue.main.redrive_policy) == { deadLetterTargetArn = aws_sqs_queue.dead_letter.arn, maxReceiveCount = 5 }
    error_message = "The main queue must dead-letter to the DLQ after 5 receives, got ${aws_sqs_queue.main.redrive_policy}."
  }
  assert {
    condition     = aws_sqs_queue_redrive_allow_policy.dead_letter.queue_url == aws_sqs_queue.dead_letter.id && jsondecode(aws_sqs_queue_redrive_allow_policy.dead_letter.redrive_allow_policy) == { redrivePermission = "byQueue", sourceQueueArns = [aws_sqs_queue.main.arn] }
    error_message = "The DLQ must accept dead letters from the main queue only."
  }
  assert {
    condition     = aws_sqs_queue.main.visibility_timeout_seconds == 6 * 30 + 1
    error_message = "The visibility timeout must be 6 function timeouts plus the batching window (181 s), got ${aws_sqs_queue.main.visibility_timeout_seconds}."
  }
  assert {
    condition     = aws_sqs_queue.main.message_retention_seconds == 4 * 86400 && aws_sqs_queue.dead_letter.message_retention_seconds == 14 * 86400
    error_message = "Queues must keep messages 4 days (main) and 14 days (DLQ) by default."
  }

  # Encryption at rest.
  assert {
    condition     = aws_sqs_queue.main.sqs_managed_sse_enabled == true && aws_sqs_queue.dead_letter.sqs_managed_sse_enabled == true
    error_message = "Both queues must use SQS-managed encryption (SSE-SQS) by default."
  }
  assert {
    condition     = aws_sqs_queue.main.kms_master_key_id == null && aws_sqs_queue.dead_letter.kms_master_key_id == null
    error_message = "Without kms_key_arn no queue may name a KMS key."
  }
  assert {
    condition     = aws_dynamodb_table.ledger.server_side_encryption[0].enabled
    error_message = "The ledger table must be encrypted with the AWS managed key."
  }

  # TLS-only queue policies.
  assert {
    condition     = aws_sqs_queue_policy.main.queue_url == aws_sqs_queue.main.id && aws_sqs_queue_policy.dead_letter.queue_url == aws_sqs_queue.dead_letter.id
    error_message = "Each queue must carry its own policy."
  }
  assert {
    condition = alltrue([for doc in [data.aws_iam_policy_document.main_queue, data.aws_iam_policy_document.dead_letter_queue] : anytrue([
      for s in doc.statement : s.effect == "Deny" && s.actions == toset(["sqs:*"]) &&
      s.principals == toset([{ type = "*", identifiers = toset(["*"]) }]) &&
      s.condition == toset([{ test = "Bool", variable = "aws:SecureTransport", values = tolist(["false"]) }])
    ])])
    error_message = "Both queue policies must deny every SQS action to everyone when aws:SecureTransport is false."
  }
  assert {
    condition = [for s in data.aws_iam_policy_document.main_queue.statement : s.sid if s.effect == "Allow"] == ["AllowSendFromThisAccount"] && anytrue([
      for s in data.aws_iam_policy_document.main_queue.statement : s.actions == toset(["sqs:SendMessage"]) &&
      s.principals == toset([{ type = "AWS", identifiers = toset(["arn:aws:iam::111122223333:root"]) }]) &&
      s.condition == toset([{ test = "StringEquals", variable = "aws:PrincipalAccount", values = tolist(["111122223333"]) }])
    ])
    error_message = "The main queue may allow only sqs:SendMessage, only to this account."
  }
  assert {
    condition     = length([for s in data.aws_iam_policy_document.dead_letter_queue.statement : s if s.effect == "Allow"]) == 0
    error_message = "The DLQ policy may allow nothing (the function sends with its own identity policy)."
  }

  # Least privilege: exactly these statements, each on one resource.
  assert {
    condition = { for s in data.aws_iam_policy_document.function.statement : s.sid => { effect = s.effect, actions = s.actions, resources = s.resources } } == {
      UseEntitlementsTable = {
        effect    = "Allow"
        actions   = toset(["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"])
        resources = toset(["arn:aws:dynamodb:eu-west-1:111122223333:table/acme-prod-entitlements"])
      }
      UseLedgerTable = {
        effect    = "Allow"
        actions   = toset(["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem", "dynamodb:Query"])
        resources = toset(["arn:aws:dynamodb:eu-west-1:111122223333:table/acme-prod-usage-ledger"])
      }
      ConsumeUsageEventQueue = {
        effect    = "Allow"
        actions   = toset(["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"])
        resources = toset(["arn:aws:sqs:eu-west-1:111122223333:acme-prod-usage-event-queue"])
      }
      DeadLetterRejectedEvents = {
        effect    = "Allow"
        actions   = toset(["sqs:SendMessage"])
        resources = toset(["arn:aws:sqs:eu-west-1:111122223333:acme-prod-usage-event-dlq"])
      }
      QueryPendingIndex = {
        effect    = "Allow"
        actions   = toset(["dynamodb:Query"])
        resources = toset(["arn:aws:dynamodb:eu-west-1:111122223333:table/acme-prod-usage-ledger/index/pending"])
      }
      PublishNotifications = {
        effect    = "Allow"
        actions   = toset(["sns:Publish"])
        resources = toset(["arn:aws:sns:eu-west-1:111122223333:acme-prod-usage-notifications"])
      }
      WriteOwnLogs = {
        effect    = "Allow"
        actions   = toset(["logs:CreateLogStream", "logs:PutLogEvents"])
        resources = toset(["arn:aws:logs:eu-west-1:111122223333:log-group:/aws/lambda/acme-prod-usage-event-service:*"])
      }
    }
    error_message = "The function's policy grants more or other than least privilege: ${jsonencode({ for s in data.aws_iam_policy_document.function.statement : s.sid => { effect = s.effect, actions = s.actions, resources = s.resources } })}."
  }
  assert {
    condition     = aws_iam_role_policy.function.role == aws_iam_role.function.id
    error_message = "The least-privilege policy must be the function role's."
  }
  assert {
    condition = length(data.aws_iam_policy_document.assume_role.statement) == 1 && alltrue([
      for s in data.aws_iam_policy_document.assume_role.statement : s.actions == toset(["sts:AssumeRole"]) &&
      s.principals == toset([{ type = "Service", identifiers = toset(["lambda.amazonaws.com"]) }])
    ])
    error_message = "Only Lambda may assume the function's role."
  }

  # The ledger and the logs.
  assert {
    condition     = aws_dynamodb_table.ledger.hash_key == "pk" && aws_dynamodb_table.ledger.range_key == "sk" && aws_dynamodb_table.ledger.billing_mode == "PAY_PER_REQUEST"
    error_message = "The ledger must be keyed pk/sk, on demand."
  }
  assert {
    condition     = aws_dynamodb_table.ledger.ttl[0].attribute_name == "expiresAt" && aws_dynamodb_table.ledger.ttl[0].enabled && aws_dynamodb_table.ledger.point_in_time_recovery[0].enabled && aws_dynamodb_table.ledger.deletion_protection_enabled
    error_message = "The ledger must expire records on expiresAt, have point-in-time recovery and deletion protection."
  }
  assert {
    condition     = aws_cloudwatch_log_group.function.name == "/aws/lambda/acme-prod-usage-event-service" && aws_cloudwatch_log_group.function.retention_in_days == 30
    error_message = "The function's log group must be created with 30 days' retention."
  }

  # On-call.
  assert {
    condition = alltrue([for a in [
      aws_cloudwatch_metric_alarm.dlq_not_empty, aws_cloudwatch_metric_alarm.queue_oldest_message_age,
      aws_cloudwatch_metric_alarm.function_errors, aws_cloudwatch_metric_alarm.function_throttles,
      aws_cloudwatch_metric_alarm.notifications_unpublished[0],
      aws_cloudwatch_metric_alarm.holds_unreleased, aws_cloudwatch_metric_alarm.hold_sweeps_failing,
      aws_cloudwatch_metric_alarm.holds_deferred,
    ] : a.alarm_actions == toset(var.alarm_actions) && a.ok_actions == toset(var.alarm_actions)])
    error_message = "Every alarm must notify alarm_actions when it fires and when it recovers."
  }
}

# The decisions function (decisions_enabled defaults to true): the same
# package as the consumer, its own name, role, log group and concurrency,
# DynamoDB only.
run "decisions" {
  command = plan

  assert {
    condition = (
      aws_lambda_function.decisions[0].function_name == "acme-prod-usage-decisions" &&
      aws_lambda_function.decisions[0].runtime == aws_lambda_function.this.runtime &&
      aws_lambda_function.decisions[0].handler == aws_lambda_function.this.handler &&
      aws_lambda_function.decisions[0].architectures == aws_lambda_function.this.architectures &&
      aws_lambda_function.decisions[0].filename == aws_lambda_function.this.filename &&
      aws_lambda_function.decisions[0].source_code_hash == aws_lambda_function.this.source_code_hash &&
      aws_lambda_function.decisions[0].memory_size == aws_lambda_function.this.memory_size &&
      aws_lambda_function.decisions[0].timeout == aws_lambda_function.this.timeout
    )
    error_message = "The decisions function must run the consumer's package (bootstrap on provided.al2023, same architecture, memory and timeout) under its own name."
  }
  assert {
    condition     = aws_lambda_function.decisions[0].role == aws_iam_role.decisions[0].arn && aws_iam_role.decisions[0].arn != aws_iam_role.function.arn && aws_iam_role.decisions[0].name == "acme-prod-usage-decisions"
    error_message = "The decisions function must run as its own role, not the consumer's."
  }
  assert {
    condition     = aws_iam_role_policy.decisions[0].role == aws_iam_role.decisions[0].id && aws_iam_role.decisions[0].assume_role_policy == aws_iam_role.function.assume_role_policy
    error_message = "The decisions role must carry its own least-privilege policy and be assumable by Lambda only."
  }
  assert {
    condition     = aws_lambda_function.decisions[0].reserved_concurrent_executions == -1
    error_message = "Without decisions_reserved_concurrency the decisions function must be unreserved (-1), got ${aws_lambda_function.decisions[0].reserved_concurrent_executions}."
  }
  assert {
    condition = aws_lambda_function.decisions[0].environment[0].variables == tomap({
      ENTITLEMENTS_TABLE       = "acme-prod-entitlements"
      USAGE_LEDGER_TABLE       = "acme-prod-usage-ledger"
      DEDUP_RETENTION          = "336h"
      LOG_LEVEL                = "INFO"
      ENTITLEMENT_PK_ATTRIBUTE = "pk"
      ENTITLEMENT_SK_ATTRIBUTE = "sk"
      ENTITLEMENT_PK_PREFIX    = "USER#"
      ENTITLEMENT_SK_PREFIX    = "ENTITLEMENT#"
      POOL_PK_PREFIX           = "POOL#"
      NOTIFY_TOPIC_ARN         = "arn:aws:sns:eu-west-1:111122223333:acme-prod-usage-notifications"
      NOTIFY_THRESHOLDS        = "80,100"
      NOTIFY_LIMIT_REJECTED    = "true"
      NOTIFY_OVERAGE           = "true"
      NOTIFY_RECOVERY_INTERVAL = "1m"
    })
    error_message = "The decisions function must get the consumer's configuration without the queue: ${jsonencode(aws_lambda_function.decisions[0].environment[0].variables)}."
  }
  assert {
    condition     = aws_lambda_function.decisions[0].logging_config[0].log_format == "JSON" && aws_lambda_function.decisions[0].logging_config[0].log_group == "/aws/lambda/acme-prod-usage-decisions"
    error_message = "The decisions function must log JSON to its own log group."
  }
  assert {
    condition     = aws_cloudwatch_log_group.decisions[0].name == "/aws/lambda/acme-prod-usage-decisions" && aws_cloudwatch_log_group.decisions[0].retention_in_days == 30
    error_message = "The decisions function's log group must be created with the consumer's retention."
  }

  # Least privilege: the DynamoDB actions on the two tables and its own logs.
  assert {
    condition = { for s in data.aws_iam_policy_document.decisions[0].statement : s.sid => { effect = s.effect, actions = s.actions, resources = s.resources } } == {
      UseEntitlementsTable = {
        effect    = "Allow"
        actions   = toset(["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"])
        resources = toset(["arn:aws:dynamodb:eu-west-1:111122223333:table/acme-prod-entitlements"])
      }
      UseLedgerTable = {
        effect    = "Allow"
        actions   = toset(["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem", "dynamodb:Query"])
        resources = toset(["arn:aws:dynamodb:eu-west-1:111122223333:table/acme-prod-usage-ledger"])
      }
      PublishNotifications = {
        effect    = "Allow"
        actions   = toset(["sns:Publish"])
        resources = toset(["arn:aws:sns:eu-west-1:111122223333:acme-prod-usage-notifications"])
      }
      WriteOwnLogs = {
        effect    = "Allow"
        actions   = toset(["logs:CreateLogStream", "logs:PutLogEvents"])
        resources = toset(["arn:aws:logs:eu-west-1:111122223333:log-group:/aws/lambda/acme-prod-usage-decisions:*"])
      }
    }
    error_message = "The decisions role grants more or other than least privilege: ${jsonencode({ for s in data.aws_iam_policy_document.decisions[0].statement : s.sid => { effect = s.effect, actions = s.actions, resources = s.resources } })}."
  }
  assert {
    condition     = length(flatten([for s in data.aws_iam_policy_document.decisions[0].statement : [for a in s.actions : a if startswith(a, "sqs:")]])) == 0
    error_message = "The decisions role may grant no SQS action."
  }

  # What callers attach, and the outputs.
  assert {
    condition = jsondecode(output.decisions_invoke_policy_json) == {
      Version = "2012-10-17"
      Statement = [{
        Sid      = "InvokeUsageDecisions"
        Effect   = "Allow"
        Action   = "lambda:InvokeFunction"
        Resource = "arn:aws:lambda:eu-west-1:111122223333:function:acme-prod-usage-decisions"
      }]
    }
    error_message = "decisions_invoke_policy_json must grant exactly lambda:InvokeFunction on the decisions function, got ${output.decisions_invoke_policy_json}."
  }
  assert {
    condition     = output.decisions_function_arn == aws_lambda_function.decisions[0].arn && output.decisions_function_name == "acme-prod-usage-decisions"
    error_message = "The decisions function's ARN and name must be outputs."
  }
}

run "decisions_reserved_concurrency" {
  command = plan

  variables {
    decisions_reserved_concurrency = 25
    kms_key_arn                    = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
  }

  assert {
    condition     = aws_lambda_function.decisions[0].reserved_concurrent_executions == 25
    error_message = "decisions_reserved_concurrency must become the decisions function's reserved concurrency, got ${aws_lambda_function.decisions[0].reserved_concurrent_executions}."
  }
  assert {
    condition     = aws_lambda_function.this.reserved_concurrent_executions != 25
    error_message = "decisions_reserved_concurrency must not reserve concurrency for the queue consumer."
  }
  assert {
    condition     = toset([for s in data.aws_iam_policy_document.decisions[0].statement : s.sid]) == toset(["UseEntitlementsTable", "UseLedgerTable", "PublishNotifications", "WriteOwnLogs"])
    error_message = "The queue key is for SQS: the decisions role must not be granted it."
  }
}

run "decisions_disabled" {
  command = plan

  variables {
    decisions_enabled = false
  }

  assert {
    condition = (
      length(aws_lambda_function.decisions) == 0 && length(aws_iam_role.decisions) == 0 &&
      length(aws_iam_role_policy.decisions) == 0 && length(aws_cloudwatch_log_group.decisions) == 0 &&
      length(data.aws_iam_policy_document.decisions) == 0
    )
    error_message = "With decisions_enabled = false no decisions resource may be planned."
  }
  assert {
    condition     = output.decisions_function_arn == null && output.decisions_function_name == null && output.decisions_invoke_policy_json == null
    error_message = "With decisions_enabled = false the decisions outputs must be null."
  }
  assert {
    condition     = aws_lambda_function.this.function_name == "acme-prod-usage-event-service"
    error_message = "The queue consumer must not depend on the decisions function."
  }
}

run "customer_managed_key" {
  command = plan

  variables {
    kms_key_arn = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
  }

  assert {
    condition     = aws_sqs_queue.main.kms_master_key_id == var.kms_key_arn && aws_sqs_queue.dead_letter.kms_master_key_id == var.kms_key_arn
    error_message = "Both queues must be encrypted with kms_key_arn."
  }
  assert {
    condition     = aws_sqs_queue.main.sqs_managed_sse_enabled != true && aws_sqs_queue.dead_letter.sqs_managed_sse_enabled != true
    error_message = "SSE-SQS must be off when a KMS key encrypts the queues."
  }
  assert {
    condition = [for s in data.aws_iam_policy_document.function.statement : {
      actions = s.actions, resources = s.resources, condition = s.condition
      } if s.sid == "UseQueueKey"] == [{
      actions   = toset(["kms:Decrypt", "kms:GenerateDataKey"])
      resources = toset([var.kms_key_arn])
      condition = toset([{ test = "StringEquals", variable = "kms:ViaService", values = tolist(["sqs.eu-west-1.amazonaws.com"]) }])
    }]
    error_message = "With direct dead-lettering the role may decrypt and generate data keys with kms_key_arn, only via SQS."
  }
}

run "dead_lettering_by_sqs_only" {
  command = plan

  variables {
    direct_dead_lettering = false
    kms_key_arn           = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
  }

  assert {
    condition     = !contains(keys(aws_lambda_function.this.environment[0].variables), "DEAD_LETTER_QUEUE_URL")
    error_message = "Without direct dead-lettering the function must not know the DLQ."
  }
  assert {
    condition     = toset([for s in data.aws_iam_policy_document.function.statement : s.sid]) == toset(["UseEntitlementsTable", "UseLedgerTable", "ConsumeUsageEventQueue", "QueryPendingIndex", "PublishNotifications", "WriteOwnLogs", "UseQueueKey"])
    error_message = "Without direct dead-lettering the role may not send to the DLQ."
  }
  assert {
    condition     = [for s in data.aws_iam_policy_document.function.statement : s.actions if s.sid == "UseQueueKey"] == [toset(["kms:Decrypt"])]
    error_message = "Without direct dead-lettering the role only needs kms:Decrypt."
  }
}

run "options" {
  command = plan

  variables {
    timeout                            = 60
    memory_size                        = 512
    architecture                       = "x86_64"
    batch_size                         = 10
    maximum_batching_window_in_seconds = 0
    maximum_concurrency                = 50
    max_receive_count                  = 4
    dedup_retention                    = "30d"
    refund_target_wait                 = "2m"
    log_level                          = "debug"
    log_retention_days                 = 365
    ledger_deletion_protection         = false
    entitlement_pk_attribute           = "PK"
    entitlement_sk_attribute           = "SK"
    entitlement_pk_prefix              = "TENANT#1#USER#"
    entitlement_sk_prefix              = "ENT#"
    notify_thresholds                  = [50, 90.5]
    notify_limit_rejected              = false
    notify_overage                     = false
    notify_recovery_interval           = "2m"
  }

  assert {
    condition     = aws_lambda_event_source_mapping.queue.batch_size == 10 && aws_lambda_event_source_mapping.queue.maximum_batching_window_in_seconds == 0 && aws_lambda_event_source_mapping.queue.scaling_config[0].maximum_concurrency == 50
    error_message = "The event source mapping must take batch_size, the batching window and maximum_concurrency."
  }
  assert {
    condition     = aws_lambda_event_source_mapping.queue.function_response_types == toset(["ReportBatchItemFailures"])
    error_message = "Partial batch responses must stay on whatever the batch size."
  }
  assert {
    condition     = aws_lambda_function.this.timeout == 60 && aws_lambda_function.this.memory_size == 512 && aws_lambda_function.this.architectures == tolist(["x86_64"])
    error_message = "The function must take timeout, memory_size and architecture."
  }
  assert {
    condition     = aws_sqs_queue.main.visibility_timeout_seconds == 6 * 60
    error_message = "The visibility timeout must follow the function timeout (6 x 60 s + 0 s window), got ${aws_sqs_queue.main.visibility_timeout_seconds}."
  }
  assert {
    condition     = jsondecode(aws_sqs_queue.main.redrive_policy).maxReceiveCount == 4
    error_message = "The redrive policy must take max_receive_count."
  }
  assert {
    condition = { for k, v in aws_lambda_function.this.environment[0].variables : k => v if !contains(["DEAD_LETTER_QUEUE_URL", "ENTITLEMENTS_TABLE", "USAGE_LEDGER_TABLE", "USAGE_EVENT_QUEUE_URL", "NOTIFY_TOPIC_ARN"], k) } == {
      NOTIFY_THRESHOLDS        = "50,90.5"
      NOTIFY_LIMIT_REJECTED    = "false"
      NOTIFY_OVERAGE           = "false"
      NOTIFY_RECOVERY_INTERVAL = "2m"
      REFUND_TARGET_WAIT       = "2m"
      DEDUP_RETENTION          = "30d"
      LOG_LEVEL                = "DEBUG"
      ENTITLEMENT_PK_ATTRIBUTE = "PK"
      ENTITLEMENT_SK_ATTRIBUTE = "SK"
      ENTITLEMENT_PK_PREFIX    = "TENANT#1#USER#"
      ENTITLEMENT_SK_PREFIX    = "ENT#"
      POOL_PK_PREFIX           = "POOL#"
    }
    error_message = "The function must get the dedup retention, the upper-cased log level, the key layout and the notification settings: ${jsonencode(aws_lambda_function.this.environment[0].variables)}."
  }
  assert {
    condition     = aws_cloudwatch_log_group.function.retention_in_days == 365 && !aws_dynamodb_table.ledger.deletion_protection_enabled
    error_message = "Log retention and the ledger's deletion protection must follow their inputs."
  }
}

# Usage notifications (notifications_enabled defaults to true): the topic,
# who publishes to it, the ledger's index the recovery sweep queries, the
# schedule that runs the sweep in the queue consumer, and the outbox alarm.
run "notifications" {
  command = plan

  assert {
    condition     = aws_sns_topic.notifications[0].name == "acme-prod-usage-notifications" && aws_sns_topic.notifications[0].kms_master_key_id == "alias/aws/sns"
    error_message = "The notifications topic must be named after project and env and encrypted with the AWS managed key by default, got ${aws_sns_topic.notifications[0].name} with ${aws_sns_topic.notifications[0].kms_master_key_id}."
  }
  assert {
    condition     = output.usage_notifications_topic_arn == "arn:aws:sns:eu-west-1:111122223333:acme-prod-usage-notifications"
    error_message = "usage_notifications_topic_arn must be the topic's ARN, got ${output.usage_notifications_topic_arn}."
  }
  assert {
    condition = length(aws_dynamodb_table.ledger.global_secondary_index) == 1 && alltrue([
      for g in aws_dynamodb_table.ledger.global_secondary_index : g.name == "pending" && g.hash_key == "pendingPk" && g.range_key == "pendingAt" && g.projection_type == "ALL"
    ])
    error_message = "The ledger must have exactly the sparse index pending (pendingPk, pendingAt, projection ALL), as dynamodb.CreateLedgerTable creates it."
  }
  assert {
    condition = aws_dynamodb_table.ledger.attribute == toset([
      { name = "pk", type = "S" }, { name = "sk", type = "S" }, { name = "pendingPk", type = "S" }, { name = "pendingAt", type = "S" },
    ])
    error_message = "The ledger must declare its keys and the pending index's, all strings."
  }

  # The sweeps (the notifications' recovery among them): every minute,
  # EventBridge's own event, the consumer only.
  assert {
    condition     = aws_cloudwatch_event_rule.sweeps.schedule_expression == "rate(1 minute)" && aws_cloudwatch_event_rule.sweeps.name == "acme-prod-usage-sweeps"
    error_message = "The sweeps' schedule must fire every minute."
  }
  assert {
    condition     = aws_cloudwatch_event_target.sweeps.rule == aws_cloudwatch_event_rule.sweeps.name && aws_cloudwatch_event_target.sweeps.arn == aws_lambda_function.this.arn && aws_cloudwatch_event_target.sweeps.input == null
    error_message = "The schedule must invoke the queue consumer with EventBridge's own scheduled event."
  }
  assert {
    condition = (
      aws_lambda_permission.sweeps.principal == "events.amazonaws.com" &&
      aws_lambda_permission.sweeps.action == "lambda:InvokeFunction" &&
      aws_lambda_permission.sweeps.function_name == aws_lambda_function.this.function_name &&
      aws_lambda_permission.sweeps.source_arn == aws_cloudwatch_event_rule.sweeps.arn
    )
    error_message = "EventBridge may invoke the queue consumer for the sweeps' rule only."
  }

  # The topic's policy: this account may subscribe; nobody may publish without TLS.
  assert {
    condition     = aws_sns_topic_policy.notifications[0].arn == aws_sns_topic.notifications[0].arn
    error_message = "The topic must carry its policy."
  }
  assert {
    condition = { for s in data.aws_iam_policy_document.notifications_topic[0].statement : s.sid => {
      effect = s.effect, actions = s.actions, resources = s.resources, principals = s.principals, condition = s.condition
      } } == {
      AllowSubscribeFromThisAccount = {
        effect     = "Allow"
        actions    = toset(["sns:Subscribe"])
        resources  = toset(["arn:aws:sns:eu-west-1:111122223333:acme-prod-usage-notifications"])
        principals = toset([{ type = "AWS", identifiers = toset(["arn:aws:iam::111122223333:root"]) }])
        condition  = toset([{ test = "StringEquals", variable = "aws:PrincipalAccount", values = tolist(["111122223333"]) }])
      }
      DenyInsecureTransport = {
        effect     = "Deny"
        actions    = toset(["sns:Publish"])
        resources  = toset(["arn:aws:sns:eu-west-1:111122223333:acme-prod-usage-notifications"])
        principals = toset([{ type = "*", identifiers = toset(["*"]) }])
        condition  = toset([{ test = "Bool", variable = "aws:SecureTransport", values = tolist(["false"]) }])
      }
    }
    error_message = "The topic policy must allow subscribing to this account only and deny publishing without TLS."
  }

  # The outbox alarm.
  assert {
    condition = (
      aws_cloudwatch_metric_alarm.notifications_unpublished[0].namespace == "UsageEventService" &&
      aws_cloudwatch_metric_alarm.notifications_unpublished[0].metric_name == "OldestUnpublishedNotificationAge" &&
      aws_cloudwatch_metric_alarm.notifications_unpublished[0].dimensions == tomap({ FunctionName = "acme-prod-usage-event-service" }) &&
      aws_cloudwatch_metric_alarm.notifications_unpublished[0].statistic == "Maximum" &&
      aws_cloudwatch_metric_alarm.notifications_unpublished[0].threshold == 300 &&
      aws_cloudwatch_metric_alarm.notifications_unpublished[0].comparison_operator == "GreaterThanThreshold"
    )
    error_message = "The outbox alarm must fire when the consumer's OldestUnpublishedNotificationAge exceeds 300 s."
  }
}

# Expired holds: the consumer's sweep (on the sweeps' schedule) releases
# them and measures how long the oldest had been due. The alarm fires when
# that age stays high, or when no sweep reports at all; the second when
# the sweeps keep failing to query the index.
run "hold_alarms" {
  command = plan

  assert {
    condition = (
      aws_cloudwatch_metric_alarm.holds_unreleased.alarm_name == "acme-prod-usage-event-service-holds-unreleased" &&
      aws_cloudwatch_metric_alarm.holds_unreleased.namespace == "UsageEventService" &&
      aws_cloudwatch_metric_alarm.holds_unreleased.metric_name == "OldestExpiredHoldAge" &&
      aws_cloudwatch_metric_alarm.holds_unreleased.dimensions == tomap({ FunctionName = "acme-prod-usage-event-service" }) &&
      aws_cloudwatch_metric_alarm.holds_unreleased.statistic == "Maximum" &&
      aws_cloudwatch_metric_alarm.holds_unreleased.period == 60 &&
      aws_cloudwatch_metric_alarm.holds_unreleased.evaluation_periods == 2 &&
      aws_cloudwatch_metric_alarm.holds_unreleased.datapoints_to_alarm == 2 &&
      aws_cloudwatch_metric_alarm.holds_unreleased.threshold == 300 &&
      aws_cloudwatch_metric_alarm.holds_unreleased.comparison_operator == "GreaterThanThreshold" &&
      aws_cloudwatch_metric_alarm.holds_unreleased.treat_missing_data == "breaching"
    )
    error_message = "The hold alarm must fire when the consumer's OldestExpiredHoldAge stays above 300 s for two minutes, or is not reported (no sweep runs)."
  }
  assert {
    condition = (
      aws_cloudwatch_metric_alarm.hold_sweeps_failing.namespace == "UsageEventService" &&
      aws_cloudwatch_metric_alarm.hold_sweeps_failing.metric_name == "HoldSweepsFailed" &&
      aws_cloudwatch_metric_alarm.hold_sweeps_failing.dimensions == tomap({ FunctionName = "acme-prod-usage-event-service" }) &&
      aws_cloudwatch_metric_alarm.hold_sweeps_failing.statistic == "Sum" &&
      aws_cloudwatch_metric_alarm.hold_sweeps_failing.evaluation_periods == 3 &&
      aws_cloudwatch_metric_alarm.hold_sweeps_failing.datapoints_to_alarm == 3 &&
      aws_cloudwatch_metric_alarm.hold_sweeps_failing.threshold == 0 &&
      aws_cloudwatch_metric_alarm.hold_sweeps_failing.treat_missing_data == "notBreaching"
    )
    error_message = "The sweep alarm must fire when HoldSweepsFailed is above 0 for three minutes in a row."
  }
  assert {
    condition = (
      aws_cloudwatch_metric_alarm.holds_deferred.namespace == "UsageEventService" &&
      aws_cloudwatch_metric_alarm.holds_deferred.metric_name == "HoldsDeferred" &&
      aws_cloudwatch_metric_alarm.holds_deferred.dimensions == tomap({ FunctionName = "acme-prod-usage-event-service" }) &&
      aws_cloudwatch_metric_alarm.holds_deferred.statistic == "Sum" &&
      aws_cloudwatch_metric_alarm.holds_deferred.period == 3600 &&
      aws_cloudwatch_metric_alarm.holds_deferred.threshold == 0 &&
      aws_cloudwatch_metric_alarm.holds_deferred.treat_missing_data == "notBreaching"
    )
    error_message = "The set-aside alarm must fire when a sweep set any expired hold aside within an hour."
  }
}

run "notifications_fifo" {
  command = plan

  variables {
    notifications_fifo = true
  }

  assert {
    condition     = aws_sns_topic.notifications[0].name == "acme-prod-usage-notifications.fifo" && aws_sns_topic.notifications[0].fifo_topic && aws_sns_topic.notifications[0].content_based_deduplication != true
    error_message = "notifications_fifo must make a FIFO topic named .fifo, deduplicated by the IDs the functions set (not by content)."
  }
}

run "notifications_customer_managed_key" {
  command = plan

  variables {
    notifications_kms_key_arn                     = "arn:aws:kms:eu-west-1:111122223333:key/5678efgh-56ef-78gh-90ij-5678901234ef"
    oldest_unpublished_notification_alarm_seconds = 900
  }

  assert {
    condition     = aws_sns_topic.notifications[0].kms_master_key_id == var.notifications_kms_key_arn
    error_message = "The topic must be encrypted with notifications_kms_key_arn."
  }
  assert {
    condition = alltrue([for doc in [data.aws_iam_policy_document.function, data.aws_iam_policy_document.decisions[0]] :
      [for s in doc.statement : { actions = s.actions, resources = s.resources, condition = s.condition } if s.sid == "UseNotificationsKey"] == [{
        actions                           = toset(["kms:GenerateDataKey", "kms:Decrypt"])
        resources                         = toset([var.notifications_kms_key_arn])
        condition                         = toset([{ test = "StringEquals", variable = "kms:ViaService", values = tolist(["sns.eu-west-1.amazonaws.com"]) }])
    }]])
    error_message = "Both roles may generate data keys with and decrypt by notifications_kms_key_arn, only via SNS."
  }
  assert {
    condition     = length([for s in data.aws_iam_policy_document.function.statement : s if s.sid == "UseQueueKey"]) == 0
    error_message = "The topic's key must not grant the queue key statement."
  }
  assert {
    condition     = aws_cloudwatch_metric_alarm.notifications_unpublished[0].threshold == 900
    error_message = "The outbox alarm must take oldest_unpublished_notification_alarm_seconds."
  }
}

run "notifications_disabled" {
  command = plan

  variables {
    notifications_enabled     = false
    notifications_kms_key_arn = "arn:aws:kms:eu-west-1:111122223333:key/5678efgh-56ef-78gh-90ij-5678901234ef"
  }

  assert {
    condition = (
      length(aws_sns_topic.notifications) == 0 && length(aws_sns_topic_policy.notifications) == 0 &&
      length(aws_cloudwatch_metric_alarm.notifications_unpublished) == 0
    )
    error_message = "With notifications_enabled = false no notifications resource may be planned."
  }
  assert {
    condition     = output.usage_notifications_topic_arn == null
    error_message = "With notifications_enabled = false usage_notifications_topic_arn must be null."
  }
  assert {
    condition     = length([for k in concat(keys(aws_lambda_function.this.environment[0].variables), keys(aws_lambda_function.decisions[0].environment[0].variables)) : k if startswith(k, "NOTIFY_")]) == 0
    error_message = "With notifications_enabled = false neither function may get a NOTIFY_* setting."
  }
  assert {
    condition = (
      toset([for s in data.aws_iam_policy_document.function.statement : s.sid]) == toset(["UseEntitlementsTable", "UseLedgerTable", "ConsumeUsageEventQueue", "DeadLetterRejectedEvents", "QueryPendingIndex", "WriteOwnLogs"]) &&
      toset([for s in data.aws_iam_policy_document.decisions[0].statement : s.sid]) == toset(["UseEntitlementsTable", "UseLedgerTable", "WriteOwnLogs"])
    )
    error_message = "With notifications_enabled = false no role may publish or use the topic's key (the consumer still queries the index, for the holds)."
  }
  assert {
    condition     = aws_cloudwatch_event_rule.sweeps.schedule_expression == "rate(1 minute)" && aws_lambda_permission.sweeps.source_arn == aws_cloudwatch_event_rule.sweeps.arn
    error_message = "The sweeps' schedule stays without notifications: the holds' sweep runs on it."
  }
  assert {
    condition     = length(aws_dynamodb_table.ledger.global_secondary_index) == 1
    error_message = "The ledger keeps its pending index whether or not notifications are enabled."
  }
  assert {
    condition     = aws_cloudwatch_metric_alarm.holds_unreleased.metric_name == "OldestExpiredHoldAge" && aws_cloudwatch_metric_alarm.hold_sweeps_failing.metric_name == "HoldSweepsFailed"
    error_message = "The hold alarms stay without notifications."
  }
}

run "the_seeds_batch_of_20" {
  command = plan

  variables {
    batch_size = 20
  }

  assert {
    condition     = aws_lambda_event_source_mapping.queue.batch_size == 20 && aws_lambda_event_source_mapping.queue.maximum_batching_window_in_seconds == 1
    error_message = "A batch size of 20 with the default 1 s window must stay available."
  }
}

run "fifo" {
  command = plan

  variables {
    fifo_queue = true
  }

  assert {
    condition     = aws_sqs_queue.main.name == "acme-prod-usage-event-queue.fifo" && aws_sqs_queue.dead_letter.name == "acme-prod-usage-event-dlq.fifo"
    error_message = "FIFO queue names must end in .fifo, got ${aws_sqs_queue.main.name} and ${aws_sqs_queue.dead_letter.name}."
  }
  assert {
    condition     = aws_sqs_queue.main.fifo_queue == true && aws_sqs_queue.dead_letter.fifo_queue == true
    error_message = "With fifo_queue both the queue and its dead-letter queue must be FIFO queues."
  }
  assert {
    condition     = aws_sqs_queue.main.deduplication_scope == "messageGroup" && aws_sqs_queue.main.fifo_throughput_limit == "perMessageGroupId" && aws_sqs_queue.main.content_based_deduplication == false
    error_message = "The FIFO queue must run in high-throughput mode, deduplicated by the producers' deduplication IDs."
  }
  assert {
    condition     = aws_lambda_event_source_mapping.queue.batch_size == 10 && aws_lambda_event_source_mapping.queue.maximum_batching_window_in_seconds == null
    error_message = "From a FIFO queue Lambda takes at most 10 messages a batch and no batching window."
  }
  assert {
    condition     = aws_sqs_queue.main.visibility_timeout_seconds == 180
    error_message = "The FIFO queue's visibility timeout must be 6 function timeouts (no batching window)."
  }
  assert {
    condition     = jsondecode(aws_sqs_queue.main.redrive_policy).deadLetterTargetArn == aws_sqs_queue.dead_letter.arn
    error_message = "The FIFO queue must dead-letter into the FIFO dead-letter queue."
  }
}

# Tracing (README: Tracing): X-Ray active tracing and the ADOT collector
# layer on both functions, the environment that makes the binary export to
# the layer, and X-Ray's write actions on both roles.
run "tracing" {
  command = plan

  variables {
    xray_tracing   = true
    adot_layer_arn = "arn:aws:lambda:eu-west-1:901920570463:layer:aws-otel-collector-arm64-ver-0-117-0:1"
    trace_ids      = false
    tracing_environment = {
      OTEL_TRACES_SAMPLER = "parentbased_always_on"
    }
  }

  assert {
    condition     = aws_lambda_function.this.tracing_config[0].mode == "Active" && aws_lambda_function.decisions[0].tracing_config[0].mode == "Active"
    error_message = "xray_tracing must turn on active tracing on both functions."
  }
  assert {
    condition     = aws_lambda_function.this.layers == tolist([var.adot_layer_arn]) && aws_lambda_function.decisions[0].layers == tolist([var.adot_layer_arn])
    error_message = "adot_layer_arn must add the layer to both functions."
  }
  assert {
    condition = alltrue([for vars in [aws_lambda_function.this.environment[0].variables, aws_lambda_function.decisions[0].environment[0].variables] :
    vars["OTEL_TRACES_EXPORTER"] == "otlp" && vars["TRACE_IDS"] == "false" && vars["OTEL_TRACES_SAMPLER"] == "parentbased_always_on"])
    error_message = "With the ADOT layer both functions must export over OTLP (OTEL_TRACES_EXPORTER=otlp), with TRACE_IDS and tracing_environment as given."
  }
  assert {
    condition = alltrue([for doc in [data.aws_iam_policy_document.function, data.aws_iam_policy_document.decisions[0]] :
      length([for s in doc.statement : s if s.sid == "WriteTraces" && toset(s.actions) == toset(["xray:PutTraceSegments", "xray:PutTelemetryRecords"]) && toset(s.resources) == toset(["*"])]) == 1
    ])
    error_message = "Both roles must be granted X-Ray's two write actions (on \"*\", the only resource they take)."
  }
}
