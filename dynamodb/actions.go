package dynamodb

// IAMActions lists, per table, every DynamoDB IAM action this package's
// requests need. It is the single source of truth for least privilege: the
// Terraform module's policy is checked against it by a test, so a new call
// here without a grant there fails CI instead of failing in production.
//
// TransactWriteItems has no IAM action of its own: each item in it is
// authorised as the matching single-item action (Update -> UpdateItem,
// Put -> PutItem, ConditionCheck -> ConditionCheckItem).
var IAMActions = map[Table][]string{
	EntitlementsTable: {"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"},
	LedgerTable:       {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem", "dynamodb:Query"},
}

// Table names a table by its role, not its physical name.
type Table string

const (
	EntitlementsTable Table = "entitlements"
	LedgerTable       Table = "ledger"
)
