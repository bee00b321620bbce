# The ledger: one item per applied event (and its dedup key), written in the
# same transaction as the entitlement update. Items expire through TTL on
# expiresAt, which the function sets to now + DEDUP_RETENTION.
resource "aws_dynamodb_table" "ledger" {
  name                        = local.ledger_table_name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  range_key                   = "sk"
  deletion_protection_enabled = var.ledger_deletion_protection

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "sk"
    type = "S"
  }

  ttl {
    attribute_name = "expiresAt"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  # Encrypted with the AWS managed key (aws/dynamodb) rather than the default
  # AWS owned key, so key use shows up in CloudTrail.
  server_side_encryption {
    enabled = true
  }

  tags = local.tags
}
