package dynamodb

import (
	"sync"

	"github.com/usage-event-service/usage-event-service/usage"
)

// stateCache remembers, per process, the entitlement state learned from
// reads and writes, to save the read before the next write. A stale entry
// costs one failed condition, which returns the fresh state.
type stateCache struct {
	mu sync.Mutex
	m  map[usage.Scope]cached
}

// cached is what the cache knows of a scope: its entitlement, and the
// keys of notifications known to be recorded (so that a flood of
// rejections does not try to record the period's one again and again).
type cached struct {
	item     usage.Item
	notified map[string]bool
}

const maxCached = 100_000

func (c *stateCache) get(s usage.Scope) (cached, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o, ok := c.m[s]
	return o, ok
}

func (c *stateCache) put(s usage.Scope, o cached) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCached {
		clear(c.m) // crude but bounded; a miss only costs a read
	}
	c.m[s] = o
}

func (c *stateCache) forget(s usage.Scope) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, s)
}
