# Bad inputs are rejected at plan, by the variable's validation or a
# resource's precondition, before anything reaches AWS. Each run plans with
# one bad value and expects exactly that rule to fail.

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
  alarm_actions           = []
}

# The function starts no entitlement when less than 2 s remain before its
# deadline (pipeline.Processor's DeadlineMargin), so a timeout must exceed it.

run "timeout_at_the_deadline_margin" {
  command = plan
  variables {
    timeout = 2
  }
  expect_failures = [var.timeout]
}

run "timeout_below_the_deadline_margin" {
  command = plan
  variables {
    timeout = 1
  }
  expect_failures = [var.timeout]
}

run "timeout_just_above_the_deadline_margin" {
  command = plan
  variables {
    timeout = 3
  }
  assert {
    condition     = aws_lambda_function.this.timeout == 3
    error_message = "A 3 s timeout leaves 1 s to work in and must be accepted."
  }
}

run "timeout_over_lambdas_maximum" {
  command = plan
  variables {
    timeout = 901
  }
  expect_failures = [var.timeout]
}

run "batch_size_zero" {
  command = plan
  variables {
    batch_size = 0
  }
  expect_failures = [var.batch_size]
}

run "batch_size_over_sqs_maximum" {
  command = plan
  variables {
    batch_size = 10001
  }
  expect_failures = [var.batch_size]
}

run "batch_over_10_without_a_batching_window" {
  command = plan
  variables {
    batch_size                         = 11
    maximum_batching_window_in_seconds = 0
  }
  expect_failures = [aws_lambda_event_source_mapping.queue]
}

run "concurrency_below_the_event_source_minimum" {
  command = plan
  variables {
    maximum_concurrency = 1
  }
  expect_failures = [var.maximum_concurrency]
}

run "kms_alias_instead_of_key" {
  command = plan
  variables {
    kms_key_arn = "arn:aws:kms:eu-west-1:111122223333:alias/queues"
  }
  expect_failures = [var.kms_key_arn]
}

run "wildcard_entitlements_table" {
  command = plan
  variables {
    entitlements_table_arn = "arn:aws:dynamodb:eu-west-1:111122223333:table/*"
  }
  expect_failures = [var.entitlements_table_arn]
}

run "entitlements_arn_of_another_table" {
  command = plan
  variables {
    entitlements_table_name = "other-table"
  }
  expect_failures = [aws_lambda_function.this]
}

run "dedup_retention_not_a_duration" {
  command = plan
  variables {
    dedup_retention = "2w"
  }
  expect_failures = [var.dedup_retention]
}

run "dedup_retention_shorter_than_the_dlq_retention" {
  command = plan
  variables {
    dedup_retention = "168h"
  }
  expect_failures = [aws_lambda_function.this]
}

run "dlq_retention_shorter_than_the_queues" {
  command = plan
  variables {
    dlq_message_retention_seconds = 86400
    dedup_retention               = "1d"
  }
  expect_failures = [aws_sqs_queue.main]
}

run "entitlement_key_attribute_with_spaces" {
  command = plan
  variables {
    entitlement_pk_attribute = " pk"
  }
  expect_failures = [var.entitlement_pk_attribute]
}

run "entitlement_key_attributes_equal" {
  command = plan
  variables {
    entitlement_sk_attribute = "pk"
  }
  expect_failures = [aws_lambda_function.this]
}

run "empty_entitlement_key_prefix" {
  command = plan
  variables {
    entitlement_sk_prefix = ""
  }
  expect_failures = [var.entitlement_sk_prefix]
}

run "log_retention_cloudwatch_does_not_offer" {
  command = plan
  variables {
    log_retention_days = 31
  }
  expect_failures = [var.log_retention_days]
}

run "alarm_action_that_is_not_a_topic" {
  command = plan
  variables {
    alarm_actions = ["arn:aws:sqs:eu-west-1:111122223333:q"]
  }
  expect_failures = [var.alarm_actions]
}

# Reserved concurrency 0 would throttle every synchronous request.

run "decisions_reserved_concurrency_zero" {
  command = plan
  variables {
    decisions_reserved_concurrency = 0
  }
  expect_failures = [var.decisions_reserved_concurrency]
}

run "decisions_reserved_concurrency_negative" {
  command = plan
  variables {
    decisions_reserved_concurrency = -1
  }
  expect_failures = [var.decisions_reserved_concurrency]
}

run "decisions_reserved_concurrency_fraction" {
  command = plan
  variables {
    decisions_reserved_concurrency = 1.5
  }
  expect_failures = [var.decisions_reserved_concurrency]
}

run "decisions_reserved_concurrency_one" {
  command = plan
  variables {
    decisions_reserved_concurrency = 1
  }
  assert {
    condition     = aws_lambda_function.decisions[0].reserved_concurrent_executions == 1
    error_message = "A reserved concurrency of 1 is valid and must be passed through."
  }
}

# Notifications.

run "notify_threshold_zero" {
  command = plan
  variables {
    notify_thresholds = [0, 100]
  }
  expect_failures = [var.notify_thresholds]
}

run "notify_threshold_over_100" {
  command = plan
  variables {
    notify_thresholds = [80, 120]
  }
  expect_failures = [var.notify_thresholds]
}

run "notify_no_thresholds" {
  command = plan
  variables {
    notify_thresholds = []
  }
  assert {
    condition     = aws_lambda_function.this.environment[0].variables["NOTIFY_THRESHOLDS"] == ""
    error_message = "No thresholds must be passed as an empty NOTIFY_THRESHOLDS (none notified)."
  }
}

run "notify_recovery_interval_not_a_duration" {
  command = plan
  variables {
    notify_recovery_interval = "60"
  }
  expect_failures = [var.notify_recovery_interval]
}

run "notify_recovery_interval_zero" {
  command = plan
  variables {
    notify_recovery_interval = "0s"
  }
  expect_failures = [var.notify_recovery_interval]
}

run "notify_recovery_interval_under_a_second" {
  command = plan
  variables {
    notify_recovery_interval = "500ms"
  }
  expect_failures = [aws_sns_topic.notifications]
}

run "notify_recovery_interval_over_a_day" {
  command = plan
  variables {
    notify_recovery_interval = "25h"
  }
  expect_failures = [aws_sns_topic.notifications]
}

run "notifications_kms_alias_instead_of_key" {
  command = plan
  variables {
    notifications_kms_key_arn = "arn:aws:kms:eu-west-1:111122223333:alias/aws/sns"
  }
  expect_failures = [var.notifications_kms_key_arn]
}

run "outbox_alarm_below_two_sweeps" {
  command = plan
  variables {
    oldest_unpublished_notification_alarm_seconds = 60
  }
  expect_failures = [var.oldest_unpublished_notification_alarm_seconds]
}

# Lambda takes at most 10 messages a batch and no batching window from a
# FIFO queue.

run "fifo_batch_over_10" {
  command = plan
  variables {
    fifo_queue = true
    batch_size = 20
  }
  expect_failures = [aws_lambda_event_source_mapping.queue]
}

run "fifo_with_a_batching_window" {
  command = plan
  variables {
    fifo_queue                         = true
    maximum_batching_window_in_seconds = 1
  }
  expect_failures = [aws_lambda_event_source_mapping.queue]
}

# Tracing inputs.

run "adot_layer_not_a_layer_version_arn" {
  command = plan
  variables {
    adot_layer_arn = "arn:aws:lambda:eu-west-1:901920570463:layer:aws-otel-collector-arm64-ver-0-117-0"
  }
  expect_failures = [var.adot_layer_arn]
}

run "tracing_environment_beyond_otel" {
  command = plan
  variables {
    tracing_environment = {
      LOG_LEVEL = "DEBUG"
    }
  }
  expect_failures = [var.tracing_environment]
}
