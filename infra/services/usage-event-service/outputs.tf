output "usage_event_queue_url" {
  description = "URL of the usage event queue; producers send events here."
  value       = aws_sqs_queue.main.url
}

output "usage_event_queue_arn" {
  description = "ARN of the usage event queue, for producers' IAM policies (sqs:SendMessage)."
  value       = aws_sqs_queue.main.arn
}

output "dead_letter_queue_url" {
  description = "URL of the dead-letter queue holding rejected and repeatedly failing events."
  value       = aws_sqs_queue.dead_letter.url
}

output "dead_letter_queue_arn" {
  description = "ARN of the dead-letter queue (the source ARN for a redrive)."
  value       = aws_sqs_queue.dead_letter.arn
}

output "function_name" {
  description = "Name of the usage event Lambda function."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "ARN of the usage event Lambda function."
  value       = aws_lambda_function.this.arn
}

output "ledger_table_name" {
  description = "Name of the usage ledger DynamoDB table."
  value       = aws_dynamodb_table.ledger.name
}

output "ledger_table_arn" {
  description = "ARN of the usage ledger DynamoDB table."
  value       = aws_dynamodb_table.ledger.arn
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard for on-call."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "decisions_function_name" {
  description = "Name of the decisions function, which answers synchronous consume, refund and balance requests (Lambda Invoke); null when decisions_enabled is false."
  value       = var.decisions_enabled ? aws_lambda_function.decisions[0].function_name : null
}

output "decisions_function_arn" {
  description = "ARN of the decisions function; null when decisions_enabled is false."
  value       = var.decisions_enabled ? aws_lambda_function.decisions[0].arn : null
}

output "decisions_invoke_policy_json" {
  description = "IAM policy document (JSON) granting exactly lambda:InvokeFunction on the decisions function, for callers to attach to their role (e.g. aws_iam_role_policy); null when decisions_enabled is false."
  value       = local.decisions_invoke_policy_json
}

output "usage_notifications_topic_arn" {
  description = "ARN of the SNS topic usage notifications are published to (usage.threshold.reached, usage.limit.rejected; docs/notifications.md), for subscribers (sns:Subscribe) and their filter policies; null when notifications_enabled is false."
  value       = var.notifications_enabled ? aws_sns_topic.notifications[0].arn : null
}
