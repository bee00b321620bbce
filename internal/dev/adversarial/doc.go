// Package adversarial is the service's adversarial suite: seeded random
// multi-step scenarios (queued batches, coalesced or not, synchronous
// requests, hold sweeps, restarts, redeliveries of every RETRY, period
// boundaries, hold expiries, access-service editing the entitlement)
// driven through the real metering.Processor, metering.Decisions, hold sweep and
// dynamodb.Store against DynamoDB Local, with faults injected between the
// store and DynamoDB (another writer between a read and a write, answers
// lost after a write, stale reads, unprocessed keys, throttling), and
// compared step by step with a one-at-a-time oracle written from the
// README. Everything lives in the package's tests; see adversarial_test.go
// for how to run a seed or a long run.
package adversarial
