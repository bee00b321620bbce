# The ledger: one item per applied event (and its dedup key), written in the
# same transaction as the entitlement update. Items expire through TTL on
# expiresAt, which the function sets to now + DEDUP_RETENTION. It is also the
# notifications' outbox: a NOTIFY# item per recorded notification, written in
# the transaction that decided it; while unpublished it carries pendingPk and
# pendingAt, the keys of the sparse index "pending", which its publication
# removes (an active hold is in the index too, until it settles), so the
# sweeps query a few small partitions, never scan.
# Exactly as dynamodb.CreateLedgerTable creates it (infra/module_test.go).
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

  attribute {
    name = "pendingPk"
    type = "S"
  }

  attribute {
    name = "pendingAt"
    type = "S"
  }

  # Present whether or not notifications are enabled: holds use it too, and
  # enabling notifications later needs no backfill.
  global_secondary_index {
    name            = local.pending_index_name
    hash_key        = "pendingPk"
    range_key       = "pendingAt"
    projection_type = "ALL"
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
