output "usage_event_queue_url" {
  description = "URL of the usage event queue; give it to producers."
  value       = module.usage_event_service.usage_event_queue_url
}

output "usage_event_queue_arn" {
  description = "ARN of the usage event queue, for producers' sqs:SendMessage grants."
  value       = module.usage_event_service.usage_event_queue_arn
}
