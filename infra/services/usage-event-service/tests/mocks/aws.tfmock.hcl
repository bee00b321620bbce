# What the mocked AWS provider answers in tests/*.tftest.hcl: realistic
# values wherever the AWS provider validates them (an ARN, a policy JSON) or
# a test asserts on them. Everything is known at plan time
# (override_during = plan in the test files), so the runs are plans:
# nothing is created, no credentials are needed, nothing leaves the machine.

# The function's policies are asserted through the documents' statements;
# their rendered JSON only has to be valid for the provider's own checks.
mock_data "aws_iam_policy_document" {
  defaults = {
    json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
  }
}

mock_data "aws_caller_identity" {
  defaults = {
    account_id = "111122223333"
    arn        = "arn:aws:iam::111122223333:role/terraform"
    user_id    = "AROATERRAFORM"
  }
}

mock_data "aws_region" {
  defaults = {
    name = "eu-west-1"
  }
}

mock_data "aws_partition" {
  defaults = {
    partition  = "aws"
    dns_suffix = "amazonaws.com"
  }
}

# What AWS would return for the resources other resources point at, named
# as the module names them for project "acme" and env "prod".

override_resource {
  target = aws_sqs_queue.main
  values = {
    arn = "arn:aws:sqs:eu-west-1:111122223333:acme-prod-usage-event-queue"
    id  = "https://sqs.eu-west-1.amazonaws.com/111122223333/acme-prod-usage-event-queue"
    url = "https://sqs.eu-west-1.amazonaws.com/111122223333/acme-prod-usage-event-queue"
  }
}

override_resource {
  target = aws_sqs_queue.dead_letter
  values = {
    arn = "arn:aws:sqs:eu-west-1:111122223333:acme-prod-usage-event-dlq"
    id  = "https://sqs.eu-west-1.amazonaws.com/111122223333/acme-prod-usage-event-dlq"
    url = "https://sqs.eu-west-1.amazonaws.com/111122223333/acme-prod-usage-event-dlq"
  }
}

override_resource {
  target = aws_dynamodb_table.ledger
  values = {
    arn = "arn:aws:dynamodb:eu-west-1:111122223333:table/acme-prod-usage-ledger"
  }
}

override_resource {
  target = aws_cloudwatch_log_group.function
  values = {
    arn = "arn:aws:logs:eu-west-1:111122223333:log-group:/aws/lambda/acme-prod-usage-event-service"
  }
}

override_resource {
  target = aws_iam_role.function
  values = {
    arn = "arn:aws:iam::111122223333:role/acme-prod-usage-event-service"
    id  = "acme-prod-usage-event-service"
  }
}

override_resource {
  target = aws_lambda_function.this
  values = {
    arn = "arn:aws:lambda:eu-west-1:111122223333:function:acme-prod-usage-event-service"
  }
}

# The decisions function (decisions_enabled, the default): count = 1.

override_resource {
  target = aws_cloudwatch_log_group.decisions
  values = {
    arn = "arn:aws:logs:eu-west-1:111122223333:log-group:/aws/lambda/acme-prod-usage-decisions"
  }
}

override_resource {
  target = aws_iam_role.decisions
  values = {
    arn = "arn:aws:iam::111122223333:role/acme-prod-usage-decisions"
    id  = "acme-prod-usage-decisions"
  }
}

override_resource {
  target = aws_lambda_function.decisions
  values = {
    arn = "arn:aws:lambda:eu-west-1:111122223333:function:acme-prod-usage-decisions"
  }
}

# Usage notifications (notifications_enabled, the default): count = 1.

override_resource {
  target = aws_sns_topic.notifications
  values = {
    arn = "arn:aws:sns:eu-west-1:111122223333:acme-prod-usage-notifications"
    id  = "arn:aws:sns:eu-west-1:111122223333:acme-prod-usage-notifications"
  }
}

# The sweeps' schedule.

override_resource {
  target = aws_cloudwatch_event_rule.sweeps
  values = {
    arn = "arn:aws:events:eu-west-1:111122223333:rule/acme-prod-usage-sweeps"
    id  = "acme-prod-usage-sweeps"
  }
}
