# Every input whose wrong value AWS would only reject at apply time (or,
# worse, accept and misbehave with) is validated here, so `terraform plan`
# fails instead. Rules that relate two inputs live in `lifecycle`
# preconditions (main.tf, lambda.tf), because cross-variable validation needs
# Terraform 1.9 and this module supports 1.5.

variable "project" {
  description = "Project name, the first part of every resource name. Lower-case letters, digits and hyphens, at most 20 characters (the function and role names are limited to 64)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,19}$", var.project))
    error_message = "project must start with a lower-case letter and contain only lower-case letters, digits and hyphens, at most 20 characters."
  }
}

variable "env" {
  description = "Environment name (e.g. dev, staging, prod), the second part of every resource name. Lower-case letters, digits and hyphens, at most 16 characters."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,15}$", var.env))
    error_message = "env must start with a lower-case letter and contain only lower-case letters, digits and hyphens, at most 16 characters."
  }
}

variable "entitlements_table_name" {
  description = "Name of the entitlements DynamoDB table owned by access-service (its output). Passed to the function as ENTITLEMENTS_TABLE."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_.-]{3,255}$", var.entitlements_table_name))
    error_message = "entitlements_table_name must be a DynamoDB table name: 3-255 characters from a-z, A-Z, 0-9, '_', '-' and '.'."
  }
}

variable "entitlements_table_arn" {
  description = "ARN of the entitlements DynamoDB table owned by access-service (its output). The function's role is granted exactly the DynamoDB actions it needs on this ARN and nothing else."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:[0-9]{12}:table/[a-zA-Z0-9_.-]{3,255}$", var.entitlements_table_arn))
    error_message = "entitlements_table_arn must be a DynamoDB table ARN (arn:<partition>:dynamodb:<region>:<account>:table/<name>), without wildcards."
  }
}

variable "package_path" {
  description = "Path to function.zip, the deployment package holding the `bootstrap` binary built for var.architecture."
  type        = string

  validation {
    condition     = endswith(var.package_path, ".zip")
    error_message = "package_path must point at the .zip deployment package (function.zip)."
  }
}

variable "architecture" {
  description = "Instruction set the bootstrap binary was built for: arm64 (GOARCH=arm64, the default) or x86_64 (GOARCH=amd64)."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be \"arm64\" or \"x86_64\"."
  }
}

variable "memory_size" {
  description = "Function memory in MB (128-10240). CPU scales with it."
  type        = number
  default     = 256

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240 && floor(var.memory_size) == var.memory_size
    error_message = "memory_size must be a whole number of MB between 128 and 10240."
  }
}

variable "timeout" {
  description = "Function timeout in seconds (3-900). Must exceed the function's deadline margin of 2 s: it starts no entitlement when less than 2 s remain before the deadline, so a timeout of 2 s or less would apply nothing and redeliver every message. The queue's visibility timeout is derived from it (6 x timeout + batching window, as AWS recommends)."
  type        = number
  default     = 30

  validation {
    condition     = var.timeout >= 1 && var.timeout <= 900 && floor(var.timeout) == var.timeout
    error_message = "timeout must be a whole number of seconds between 1 and 900."
  }

  validation {
    # pipeline.Processor's default DeadlineMargin (2 s); infra/module_test.go
    # and tests/validation.tftest.hcl pin it.
    condition     = var.timeout > 2
    error_message = "timeout must be more than 2 seconds, the function's deadline margin: it starts no entitlement when less than 2 s remain before the deadline, so with a timeout of 2 s or less nothing would ever be applied and every message would be redelivered until it is dead-lettered."
  }
}

variable "fifo_queue" {
  description = "Create the queue and its dead-letter queue as FIFO queues (names end in .fifo, high-throughput mode): one entitlement's events are then applied in order and never by two invocations at once. For hot users; see the module README (FIFO mode) for when to choose it and its throughput limits. Producers must send with MessageGroupId = the entitlement (the Go producer library's producer.GroupID) and a MessageDeduplicationId. Lambda takes at most 10 messages a batch and no batching window from a FIFO queue."
  type        = bool
  default     = false
}

variable "batch_size" {
  description = "Maximum number of messages per invocation: 1-10000 on a standard queue (above 10 requires a batching window of at least 1 s), at most 10 on a FIFO queue. null (the default) is 100 on a standard queue and 10 on a FIFO queue, chosen from the benchmark (docs/performance.md); 20, the earlier default, stays available."
  type        = number
  default     = null

  validation {
    condition     = var.batch_size == null ? true : var.batch_size >= 1 && var.batch_size <= 10000 && floor(var.batch_size) == var.batch_size
    error_message = "batch_size must be a whole number between 1 and 10000."
  }
}

variable "maximum_batching_window_in_seconds" {
  description = "How long Lambda may wait to fill a batch (0-300 s); at least 1 when the batch size is above 10, and 0 (or null) on a FIFO queue, where Lambda has no batching window. null (the default) is 1 s on a standard queue, chosen from the benchmark (docs/performance.md): an event waits at most that long for its batch."
  type        = number
  default     = null

  validation {
    condition     = var.maximum_batching_window_in_seconds == null ? true : var.maximum_batching_window_in_seconds >= 0 && var.maximum_batching_window_in_seconds <= 300 && floor(var.maximum_batching_window_in_seconds) == var.maximum_batching_window_in_seconds
    error_message = "maximum_batching_window_in_seconds must be a whole number between 0 and 300."
  }
}

variable "maximum_concurrency" {
  description = "Maximum number of concurrent invocations the SQS event source may drive (2-1000). Bounds the write rate on the shared entitlements table."
  type        = number
  default     = 10

  validation {
    condition     = var.maximum_concurrency >= 2 && var.maximum_concurrency <= 1000 && floor(var.maximum_concurrency) == var.maximum_concurrency
    error_message = "maximum_concurrency must be a whole number between 2 and 1000."
  }
}

variable "max_receive_count" {
  description = "Receives before SQS moves a message to the dead-letter queue (1-1000). Keep it at least 4: a queued refund waiting for its consume (refund_target_wait) is received up to 4 times."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000 && floor(var.max_receive_count) == var.max_receive_count
    error_message = "max_receive_count must be a whole number between 1 and 1000."
  }
}

variable "message_retention_seconds" {
  description = "How long the main queue keeps a message (60 s - 14 days). Default 4 days."
  type        = number
  default     = 345600

  validation {
    condition     = var.message_retention_seconds >= 60 && var.message_retention_seconds <= 1209600 && floor(var.message_retention_seconds) == var.message_retention_seconds
    error_message = "message_retention_seconds must be a whole number between 60 and 1209600 (14 days)."
  }
}

variable "dlq_message_retention_seconds" {
  description = "How long the dead-letter queue keeps a message (60 s - 14 days). Must not be shorter than message_retention_seconds: SQS keeps a dead-lettered message's original enqueue time, so a shorter DLQ retention deletes messages on arrival. Default 14 days."
  type        = number
  default     = 1209600

  validation {
    condition     = var.dlq_message_retention_seconds >= 60 && var.dlq_message_retention_seconds <= 1209600 && floor(var.dlq_message_retention_seconds) == var.dlq_message_retention_seconds
    error_message = "dlq_message_retention_seconds must be a whole number between 60 and 1209600 (14 days)."
  }
}

variable "dedup_retention" {
  description = "How long an applied event's ledger record (and so its deduplication) is kept: a Go duration such as \"336h\" or \"1h30m\", or whole days such as \"14d\", as the function's DEDUP_RETENTION accepts. At least 1h, and at least dlq_message_retention_seconds so that a message redriven from the DLQ is still recognised as a duplicate (checked at plan). Default 14 days."
  type        = string
  default     = "336h"

  validation {
    condition     = can(regex("^([0-9]+d|([0-9]+(\\.[0-9]+)?(ns|us|µs|μs|ms|s|m|h))+)$", var.dedup_retention))
    error_message = "dedup_retention must be a Go duration such as \"336h\" or \"1h30m\" (numbers followed by h, m, s, ms, us or ns; no sign, no spaces) or whole days such as \"14d\"."
  }
}

variable "refund_target_wait" {
  description = "How long a queued refund whose consume is not applied yet is retried, from when it was sent, before it is rejected REFUND_TARGET_NOT_FOUND: a Go duration from 0s to 24h (the function's REFUND_TARGET_WAIT). Its redeliveries are stretched, so it is received at most 4 times within the wait. Default 15m."
  type        = string
  default     = "15m"

  validation {
    condition     = can(regex("^([0-9]+(\\.[0-9]+)?(ns|us|µs|μs|ms|s|m|h))+$", var.refund_target_wait))
    error_message = "refund_target_wait must be a Go duration such as \"15m\" or \"1h30m\" (numbers followed by h, m, s, ms, us or ns; no sign, no spaces), at most 24h."
  }
}

variable "entitlement_pk_attribute" {
  description = "Partition key attribute of access-service's entitlements table (1-255 characters, no surrounding spaces). Passed as ENTITLEMENT_PK_ATTRIBUTE. Default pk."
  type        = string
  default     = "pk"

  validation {
    condition     = can(regex("^.{1,255}$", var.entitlement_pk_attribute)) && trimspace(var.entitlement_pk_attribute) == var.entitlement_pk_attribute
    error_message = "entitlement_pk_attribute must be a DynamoDB attribute name of 1-255 characters on one line, without leading or trailing spaces (the function trims them)."
  }
}

variable "entitlement_sk_attribute" {
  description = "Sort key attribute of access-service's entitlements table (1-255 characters, no surrounding spaces, different from entitlement_pk_attribute). Passed as ENTITLEMENT_SK_ATTRIBUTE. Default sk."
  type        = string
  default     = "sk"

  validation {
    condition     = can(regex("^.{1,255}$", var.entitlement_sk_attribute)) && trimspace(var.entitlement_sk_attribute) == var.entitlement_sk_attribute
    error_message = "entitlement_sk_attribute must be a DynamoDB attribute name of 1-255 characters on one line, without leading or trailing spaces (the function trims them)."
  }
}

variable "entitlement_pk_prefix" {
  description = "Prefix of the entitlements table's partition key value before the userId (pk = <prefix><userId>). Passed verbatim as ENTITLEMENT_PK_PREFIX; not empty, because the function reads an empty value as the default. Default USER#."
  type        = string
  default     = "USER#"

  validation {
    condition     = var.entitlement_pk_prefix != ""
    error_message = "entitlement_pk_prefix must not be empty: the function reads an empty ENTITLEMENT_PK_PREFIX as its default, \"USER#\"."
  }
}

variable "pool_pk_prefix" {
  description = "Prefix of the entitlements table's partition key value before a pool's ID (pk = <prefix><poolId>). Passed verbatim as POOL_PK_PREFIX; not empty, because the function reads an empty value as the default. Neither it nor entitlement_pk_prefix may begin with the other. Default POOL#."
  type        = string
  default     = "POOL#"

  validation {
    condition     = var.pool_pk_prefix != ""
    error_message = "pool_pk_prefix must not be empty: the function reads an empty POOL_PK_PREFIX as its default, \"POOL#\"."
  }
}

variable "entitlement_sk_prefix" {
  description = "Prefix of the entitlements table's sort key value before the entitlementKey (sk = <prefix><entitlementKey>). Passed verbatim as ENTITLEMENT_SK_PREFIX; not empty, because the function reads an empty value as the default. Default ENTITLEMENT#."
  type        = string
  default     = "ENTITLEMENT#"

  validation {
    condition     = var.entitlement_sk_prefix != ""
    error_message = "entitlement_sk_prefix must not be empty: the function reads an empty ENTITLEMENT_SK_PREFIX as its default, \"ENTITLEMENT#\"."
  }
}

variable "log_retention_days" {
  description = "Retention of the function's CloudWatch log group, in days. One of the values CloudWatch Logs accepts: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653."
  }
}

variable "log_level" {
  description = "Minimum level the function logs at (DEBUG, INFO, WARN or ERROR; case-insensitive). Passed upper-cased as LOG_LEVEL."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARN", "ERROR"], upper(var.log_level))
    error_message = "log_level must be one of DEBUG, INFO, WARN, ERROR."
  }
}

variable "direct_dead_lettering" {
  description = "When true (the default) the function sends permanently rejected messages straight to the DLQ itself (env DEAD_LETTER_QUEUE_URL, plus sqs:SendMessage on the DLQ) instead of letting them be received max_receive_count times first."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "ARN of a customer managed KMS key to encrypt both queues with. null (the default) uses SQS-managed server-side encryption (SSE-SQS). The key policy must let producers use it (kms:GenerateDataKey, kms:Decrypt); this module grants the function's role what it needs."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[a-zA-Z0-9-]+$", var.kms_key_arn))
    error_message = "kms_key_arn must be null or a KMS key ARN (arn:<partition>:kms:<region>:<account>:key/<key-id>); aliases are not accepted because IAM grants on an alias ARN do not cover the key."
  }
}

variable "ledger_deletion_protection" {
  description = "Enable DynamoDB deletion protection on the usage ledger table. Leave true in every environment that holds real data; set false only to tear down a disposable environment."
  type        = bool
  default     = true
}

variable "alarm_actions" {
  description = "SNS topic ARNs notified when an alarm fires and when it recovers. Required on purpose: pass [] only for an environment nobody is paged for."
  type        = list(string)

  validation {
    condition     = alltrue([for a in var.alarm_actions : can(regex("^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[a-zA-Z0-9_-]{1,256}(\\.fifo)?$", a))])
    error_message = "Every alarm_actions entry must be an SNS topic ARN (arn:<partition>:sns:<region>:<account>:<topic>)."
  }
}

variable "oldest_message_age_alarm_seconds" {
  description = "Alarm when the oldest message in the main queue is older than this many seconds (60 s up to the queue's retention). Default 300."
  type        = number
  default     = 300

  validation {
    condition     = var.oldest_message_age_alarm_seconds >= 60 && var.oldest_message_age_alarm_seconds <= 1209600
    error_message = "oldest_message_age_alarm_seconds must be between 60 and 1209600."
  }
}

variable "tags" {
  description = "Tags added to every taggable resource (merged over Service and Environment)."
  type        = map(string)
  default     = {}
}

variable "decisions_enabled" {
  description = "Deploy the decisions function, which answers synchronous consume, refund and balance requests (Lambda Invoke) from the same package, with its own role (DynamoDB only, no SQS) and log group. true by default; false deploys only the queue consumer, and the decisions_* outputs are null."
  type        = bool
  default     = true
}

variable "decisions_reserved_concurrency" {
  description = "Reserved concurrency of the decisions function: that many concurrent executions are set aside for it and it never runs more, so synchronous requests and the queue consumer cannot take each other's capacity. null (the default) reserves nothing: the function shares the account's unreserved pool, unbounded. At least 1 when set (0 would throttle every request); AWS refuses a reservation that leaves the account fewer than 100 unreserved executions."
  type        = number
  default     = null

  validation {
    # A conditional, not ||: Terraform's || does not short-circuit, and
    # null >= 1 is an error.
    condition     = var.decisions_reserved_concurrency == null ? true : var.decisions_reserved_concurrency >= 1 && floor(var.decisions_reserved_concurrency) == var.decisions_reserved_concurrency
    error_message = "decisions_reserved_concurrency must be null (unreserved) or a whole number of at least 1; 0 would throttle every request."
  }
}

variable "notifications_enabled" {
  description = "Publish usage notifications (usage.threshold.reached, usage.limit.rejected; docs/notifications.md): creates the SNS topic, gives both functions NOTIFY_TOPIC_ARN and sns:Publish on it, and runs the outbox's recovery sweep in the queue consumer every minute (an EventBridge schedule). true by default; false creates none of it, the functions record and publish no notification, and usage_notifications_topic_arn is null."
  type        = bool
  default     = true
}

variable "notifications_kms_key_arn" {
  description = "ARN of a customer managed KMS key to encrypt the notifications topic with. null (the default) uses the AWS managed key alias/aws/sns, whose key policy already lets SNS use it for this account's publishers. With a key, both functions' roles are granted kms:GenerateDataKey and kms:Decrypt on it, only via SNS; its key policy must let this account's IAM policies grant that."
  type        = string
  default     = null

  validation {
    condition     = var.notifications_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[a-zA-Z0-9-]+$", var.notifications_kms_key_arn))
    error_message = "notifications_kms_key_arn must be null or a KMS key ARN (arn:<partition>:kms:<region>:<account>:key/<key-id>); aliases are not accepted because IAM grants on an alias ARN do not cover the key."
  }
}

variable "notifications_fifo" {
  description = "Make the notifications topic FIFO ({project}-{env}-usage-notifications.fifo): each user's entitlement's notifications are delivered in order, and SNS drops a repeat of a notification (same notificationId, its deduplication ID) published within 5 minutes. Subscribers must then be SQS queues. false (the default): a standard topic, any protocol; subscribers drop the rare repeat by notificationId."
  type        = bool
  default     = false
}

variable "notify_thresholds" {
  description = "Percentages of an entitlement's limit (each above 0 and at most 100) whose crossing publishes usage.threshold.reached, once per threshold and period; env NOTIFY_THRESHOLDS, comma-separated. An entitlement's own notifyThresholds attribute overrides them. [] notifies no threshold (usage.limit.rejected is separate). Default [80, 100]."
  type        = list(number)
  default     = [80, 100]

  validation {
    condition     = alltrue([for p in var.notify_thresholds : p > 0 && p <= 100])
    error_message = "Every notify_thresholds entry must be a percentage above 0 and at most 100."
  }
}

variable "notify_limit_rejected" {
  description = "Publish usage.limit.rejected for the first LIMIT_EXCEEDED of each period of an entitlement, whatever the thresholds; env NOTIFY_LIMIT_REJECTED. Default true."
  type        = bool
  default     = true
}

variable "notify_overage" {
  description = "Publish usage.overage.started for the consume or reserve that draws from an entitlement's overage (overageLimit) while none of it is used yet in the period, at most once per period; env NOTIFY_OVERAGE. Default true."
  type        = bool
  default     = true
}

variable "notify_recovery_interval" {
  description = "The functions' NOTIFY_RECOVERY_INTERVAL, a Go duration from 1s to 24h such as \"1m\" or \"90s\" (checked at plan). It is how often the worker runs the recovery sweep; here the EventBridge schedule runs it every minute whatever this says, and it only shortens the sweep's grace for fresh notifications (left to the publication right after their write) to min(10s, interval). Default 1m."
  type        = string
  default     = "1m"

  validation {
    condition     = can(regex("^([0-9]+(\\.[0-9]+)?(ns|us|µs|μs|ms|s|m|h))+$", var.notify_recovery_interval))
    error_message = "notify_recovery_interval must be a Go duration such as \"1m\" or \"1m30s\" (numbers followed by h, m, s, ms, us or ns; no sign, no spaces)."
  }

  validation {
    # No sign is allowed above, so a non-zero digit makes it positive.
    condition     = can(regex("[1-9]", var.notify_recovery_interval))
    error_message = "notify_recovery_interval must be more than zero."
  }
}

variable "oldest_unpublished_notification_alarm_seconds" {
  description = "Alarm when the oldest recorded but unpublished notification is older than this many seconds (the queue consumer's OldestUnpublishedNotificationAge, measured by each recovery sweep): publication to the topic keeps failing. 120 s up to 14 days; default 300."
  type        = number
  default     = 300

  validation {
    condition     = var.oldest_unpublished_notification_alarm_seconds >= 120 && var.oldest_unpublished_notification_alarm_seconds <= 1209600
    error_message = "oldest_unpublished_notification_alarm_seconds must be between 120 (two sweeps) and 1209600."
  }
}

variable "xray_tracing" {
  description = "Turn on X-Ray active tracing on the functions (tracing_config mode Active): Lambda records its own segments for each invocation. The roles get xray:PutTraceSegments and xray:PutTelemetryRecords. The service's own spans need the ADOT layer (adot_layer_arn) or an OTLP endpoint (tracing_environment) as well."
  type        = bool
  default     = false
}

variable "adot_layer_arn" {
  description = "ARN (with version) of an AWS Distro for OpenTelemetry collector Lambda layer to add to the functions, e.g. the ADOT collector layer published for the region and architecture. With it the functions export their spans over OTLP/HTTP to the layer's collector on localhost:4318 (OTEL_TRACES_EXPORTER=otlp), which by default sends them to X-Ray; the roles get the X-Ray write permissions. null: no layer."
  type        = string
  default     = null

  validation {
    condition     = var.adot_layer_arn == null || can(regex("^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:layer:[A-Za-z0-9_-]+:[0-9]+$", var.adot_layer_arn))
    error_message = "adot_layer_arn must be a Lambda layer version ARN (arn:aws:lambda:<region>:<account>:layer:<name>:<version>)."
  }
}

variable "tracing_environment" {
  description = "Extra tracing environment for the functions: the standard OTEL_* variables (OTEL_EXPORTER_OTLP_ENDPOINT to export to a collector elsewhere, OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER, ...) and OPENTELEMETRY_COLLECTOR_CONFIG_URI for the ADOT layer's own configuration. They win over what adot_layer_arn sets. Tracing is on when it sets OTEL_TRACES_EXPORTER=otlp or an OTLP endpoint, or with adot_layer_arn (README: Tracing)."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.tracing_environment) : startswith(k, "OTEL_") || k == "OPENTELEMETRY_COLLECTOR_CONFIG_URI"])
    error_message = "tracing_environment may only set OTEL_* variables and OPENTELEMETRY_COLLECTOR_CONFIG_URI."
  }
}

variable "trace_ids" {
  description = "With tracing on, put each event's userId, entitlementKey and idempotencyKey on its span (TRACE_IDS). false leaves them off, where trace storage must not hold user identifiers."
  type        = bool
  default     = true
}
