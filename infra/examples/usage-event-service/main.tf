# Example root module: deploys usage-event-service next to an existing
# access-service deployment. Apply access-service first; its entitlements
# table name and ARN come in as variables here (a real stack would read them
# from access-service's outputs, e.g. a terraform_remote_state data source).

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      ManagedBy = "terraform"
    }
  }
}

module "usage_event_service" {
  source = "../../services/usage-event-service"

  project = var.project
  env     = var.env

  entitlements_table_name = var.entitlements_table_name
  entitlements_table_arn  = var.entitlements_table_arn

  package_path  = var.package_path
  architecture  = "arm64"
  alarm_actions = var.alarm_actions

  tags = {
    Owner = "usage-team"
  }
}
