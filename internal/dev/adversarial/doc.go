// Package adversarial is the service's adversarial suite: seeded random
// multi-step scenarios (queued batches, coalesced or not, synchronous
// requests, hold sweeps, restarts, redeliveries of every RETRY, period
// boundaries, hold expiries, access-service editing the entitlement)
// driven through the real metering.Processor, metering.Decisions, hold sweep and
// dynamodb.Store against DynamoDB Local, with faults injected between the
// store and DynamoDB (another writer between a read and a write, answers
// lost after a write, stale reads, unprocessed keys, throttling), and
// compared step by step with a one-at-a-time oracle written from the
// README.
//
// Grants, voids, rollover and overage take part like every other
// operation: the scenarios send grants (with and without expiresAt, some
// expiring while the clock runs, some not in the future, with
// priorities, sent again) and voids, queued and synchronous; create
// entitlements with overageLimit and rolloverMax, which access-service
// edits or writes odd (grants too); and play short stories (a grant drawn
// from, voided, then given back to; a hold beyond the allowance settled
// after its period; the overage drawn and refunded; the bound on grants;
// a rollover drawn from). The oracle (oracle_grants_test.go) models the
// draws, the give-backs and their lapses, voids, the bound, rollover at
// the lazy reset and usage.overage.started; after every step the suite
// compares the stored grants, overageUsed and each ledger entry's draws
// with it. A run of 12 scenarios or more refuses to pass when one of
// these rules was never exercised (mustCover).
//
// Team pools take part too: half the scenarios (the odd seeds; -pools)
// are a team of one or two pools and three members with and without
// caps, whose events go past what the pool has left, while access-service
// (also between a read and a write) moves members between pools, takes
// them out, names a pool that does not exist, changes a pool's limit,
// writes it odd, deletes it and writes it again, and another member of
// the pool consumes in the gap. The oracle (oracle_pools_test.go) models
// the cap first, then the pool, the give-backs to the pool an entry
// recorded and their lapses; after every step the suite compares each
// pool's item and notifications and each entry's pool, poolDraws and
// poolPeriodStart with it, and checks that a pool's used is its members'
// draws kept in its period and not above its limit (mustCoverPools).
//
// Everything lives in the package's tests; see adversarial_test.go for
// how to run a seed or a long run, defects_test.go and
// defects_grants_test.go for the focused scenarios of each defect found.
package adversarial
