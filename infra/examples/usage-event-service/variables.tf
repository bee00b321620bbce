variable "region" {
  description = "AWS region to deploy to; the same region as access-service's entitlements table."
  type        = string
  default     = "eu-west-1"
}

variable "project" {
  description = "Project name, the first part of every resource name."
  type        = string
  default     = "acme"
}

variable "env" {
  description = "Environment name, the second part of every resource name."
  type        = string
  default     = "dev"
}

variable "entitlements_table_name" {
  description = "Name of access-service's entitlements table (its output)."
  type        = string
}

variable "entitlements_table_arn" {
  description = "ARN of access-service's entitlements table (its output)."
  type        = string
}

variable "package_path" {
  description = "Path to function.zip (the linux/arm64 bootstrap binary, zipped), as `make package` writes it (dist/function.zip in the repository)."
  type        = string
  default     = "../../../dist/function.zip"
}

variable "alarm_actions" {
  description = "SNS topic ARNs to notify when an alarm fires or recovers."
  type        = list(string)
  default     = []
}
