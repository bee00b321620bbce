output "usage_event_queue_url" {
  description = "URL of the usage event queue; give it to producers."
  value       = module.usage_event_service.usage_event_queue_url
}

output "usage_event_queue_arn" {
  description = "ARN of the usage event queue, for producers' sqs:SendMessage grants."
  value       = module.usage_event_service.usage_event_queue_arn
}

output "decisions_function_name" {
  description = "Name of the decisions function: callers Invoke it (RequestResponse) with one consume, refund or balance request."
  value       = module.usage_event_service.decisions_function_name
}

output "decisions_function_arn" {
  description = "ARN of the decisions function."
  value       = module.usage_event_service.decisions_function_arn
}

output "decisions_invoke_policy_json" {
  description = "IAM policy (JSON) granting exactly lambda:InvokeFunction on the decisions function; attach it to each caller's role."
  value       = module.usage_event_service.decisions_invoke_policy_json
}

output "usage_notifications_topic_arn" {
  description = "ARN of the usage notifications topic: subscribe queues, functions, e-mail or HTTPS endpoints to it (docs/notifications.md)."
  value       = module.usage_event_service.usage_notifications_topic_arn
}
