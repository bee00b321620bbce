package memstore_test

import (
	"testing"

	"github.com/usage-event-service/usage-event-service/metering"

	"github.com/usage-event-service/usage-event-service/internal/dev/memstore"
	"github.com/usage-event-service/usage-event-service/internal/dev/storetest"
	"github.com/usage-event-service/usage-event-service/usage"
)

// backend: every consumer shares the one in-memory store (it has no
// cache of its own to make them differ).
type backend struct{ s *memstore.Store }

func (b backend) Store(*testing.T) metering.Updater { return metering.Writer{Store: b.s} }
func (b backend) Put(_ *testing.T, scope usage.Scope, attrs map[string]usage.Value) {
	b.s.PutEntitlement(scope, attrs)
}
func (b backend) Get(_ *testing.T, scope usage.Scope) usage.Item { return b.s.Entitlement(scope) }
func (b backend) Ledger(_ *testing.T, scope usage.Scope) []usage.LedgerEntry {
	return b.s.Ledger(scope)
}

func (b backend) Notifications(_ *testing.T, scope usage.Scope) []usage.Notification {
	var out []usage.Notification
	for _, n := range b.s.Notifications(scope) {
		out = append(out, n)
	}
	return out
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(*testing.T) storetest.Backend { return backend{memstore.New()} })
}
