package adversarial

import (
	"maps"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/usage"
)

// Team pools in the world: access-service writing pools and membership
// (raw items, as access-service and `usagectl pool put` do), and the
// checks of every pool after each step.

func poolItemKey(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: dynamodb.DefaultEntitlementKeys.PoolPrefix + id},
		"sk": &types.AttributeValueMemberS{Value: "ENTITLEMENT#" + entKey},
	}
}

func poolScopeOf(id string) usage.Scope { return usage.PoolScope(id, entKey) }

// createPool writes pool id's item ("": limit or overageLimit absent).
// A pool written again after it was deleted is another pool: what the
// old one's entries give back to it, and its used, no longer add up to
// its members' draws (edited).
func (w *world) createPool(id, limit, resetPeriod, overageLimit string) {
	s := w.putFresh(poolItemKey(id), poolKey(id), limit, resetPeriod, overageLimit, "")
	s.edited, s.overageEdited = false, false
	if w.poolUsedBefore(id) {
		w.markEdited(s)
		s.overageEdited, s.overageEditedPeriod = true, s.editedPeriod
	}
	if !slices.Contains(w.poolIDs, id) {
		w.poolIDs = append(w.poolIDs, id)
	}
	w.logf("access: create pool %s limit=%s %s overageLimit=%s", id, limit, resetPeriod, overageLimit)
}

// poolUsedBefore: some entry counted against pool id.
func (w *world) poolUsedBefore(id string) bool {
	for _, name := range slices.Sorted(maps.Keys(w.oracle.scopes)) {
		for _, e := range w.oracle.scopes[name].ledger {
			if e.pool == id {
				return true
			}
		}
	}
	return false
}

func (w *world) deletePool(id string) {
	if _, err := w.real.DeleteItem(w.ctx, &awsdynamodb.DeleteItemInput{TableName: aws.String(w.entTable), Key: poolItemKey(id)}); err != nil {
		w.t.Fatal(err)
	}
	w.accessEdited = true
	w.oracle.scope(poolKey(id)).ent = oEnt{}
	w.logf("access: pool %s deleted", id)
}

// poolThere: pool id's item exists (an update of an absent item would
// write a partial one).
func (w *world) poolThere(id string) bool {
	if !w.oracle.scope(poolKey(id)).ent.exists {
		w.logf("access: pool %s is gone: nothing to edit", id)
		return false
	}
	return true
}

// setPoolLimit writes a pool's limit ("": removes it, unlimited); below
// what is used, the pool's used may stay above it this period.
func (w *world) setPoolLimit(id, limit string) {
	s := w.oracle.pool(id, w.now)
	if !w.poolThere(id) {
		return
	}
	if limit == "" {
		w.accessItem(poolItemKey(id), "REMOVE #l", map[string]string{"#l": "limit"}, nil)
		s.ent.limit = attr{}
	} else {
		w.accessItem(poolItemKey(id), "SET #l = :l", map[string]string{"#l": "limit"}, map[string]types.AttributeValue{":l": n(limit)})
		s.ent.limit = num(usage.MustDecimal(limit))
		if s.ent.usedNum().Cmp(s.ent.limit.num) > 0 {
			w.markEdited(s)
		}
	}
	w.logf("access: pool %s limit=%q", id, limit)
}

// setPoolUsed writes a pool's used (as setUsed a member's).
func (w *world) setPoolUsed(id, used string) {
	if !w.poolThere(id) {
		return
	}
	w.accessItem(poolItemKey(id), "SET #u = :u", map[string]string{"#u": "used"}, map[string]types.AttributeValue{":u": n(used)})
	s := w.oracle.pool(id, w.now)
	s.ent.used = num(usage.MustDecimal(used))
	s.lazyReset(w.now)
	if s.resetPending(w.now) {
		s.ent.used = num(usage.Decimal{}) // written into an ended period: the next write resets it
		s.ent.rollUsed = num(usage.MustDecimal(used))
	}
	w.markEdited(s)
	w.logf("access: pool %s used=%s", id, used)
}

// setPoolOverageLimit writes a pool's overageLimit ("": removes it).
func (w *world) setPoolOverageLimit(id, value string) {
	s := w.oracle.pool(id, w.now)
	if !w.poolThere(id) {
		return
	}
	if value == "" {
		w.accessItem(poolItemKey(id), "REMOVE #a", map[string]string{"#a": usage.AttrOverageLimit}, nil)
		s.ent.overageLimit = attr{}
	} else {
		w.accessItem(poolItemKey(id), "SET #a = :a", map[string]string{"#a": usage.AttrOverageLimit}, map[string]types.AttributeValue{":a": n(value)})
		s.ent.overageLimit = num(usage.MustDecimal(value))
	}
	s.overageEdited, s.overageEditedPeriod = true, periodOf(s.ent.resetPeriod, w.now)
	w.logf("access: pool %s overageLimit=%q", id, value)
}

// setPoolThresholds writes a pool's notifyThresholds (nil: removes them).
func (w *world) setPoolThresholds(id string, ps []string) {
	s := w.oracle.pool(id, w.now)
	if !w.poolThere(id) {
		return
	}
	w.thresholdsEdited = true
	if ps == nil {
		w.accessItem(poolItemKey(id), "REMOVE #t", map[string]string{"#t": usage.AttrNotifyThresholds}, nil)
		s.ent.thresholds = attr{}
		w.logf("access: pool %s notifyThresholds removed", id)
		return
	}
	list := []types.AttributeValue{}
	a := attr{kind: "L"}
	for _, p := range ps {
		list = append(list, n(p))
		a.list = append(a.list, num(usage.MustDecimal(p)))
	}
	w.accessItem(poolItemKey(id), "SET #t = :t", map[string]string{"#t": usage.AttrNotifyThresholds}, map[string]types.AttributeValue{":t": &types.AttributeValueMemberL{Value: list}})
	s.ent.thresholds = a
	w.logf("access: pool %s notifyThresholds=%v", id, ps)
}

// setPoolOdd writes a pool's limit or used as a value metering cannot
// read: the pool is INVALID_POOL to its members until repairPool.
func (w *world) setPoolOdd(id, which string) {
	s := w.oracle.pool(id, w.now)
	if !w.poolThere(id) {
		return
	}
	switch which {
	case "used":
		w.accessItem(poolItemKey(id), "SET #u = :u", map[string]string{"#u": "used"}, map[string]types.AttributeValue{":u": &types.AttributeValueMemberS{Value: "3"}})
		s.ent.used = attr{kind: "S", str: "3"}
	default:
		w.accessItem(poolItemKey(id), "SET #l = :l", map[string]string{"#l": "limit"}, map[string]types.AttributeValue{":l": &types.AttributeValueMemberS{Value: "lots"}})
		s.ent.limit = attr{kind: "S", str: "lots"}
	}
	w.logf("access: pool %s %s made unreadable", id, which)
}

// repairPool writes numbers back where a pool had odd values.
func (w *world) repairPool(id string) {
	s := w.oracle.scope(poolKey(id))
	if s.ent.limit.kind != "" && s.ent.limit.kind != "N" && s.ent.limit.kind != "NULL" {
		w.setPoolLimit(id, "10")
	}
	if s.ent.used.kind != "" && s.ent.used.kind != "N" {
		w.setPoolUsed(id, "2")
	}
}

// setMemberPool writes a member's pool attribute: a pool's ID, "" to
// remove it, "N" (a number) or "empty" (an empty string), which make the
// member INVALID_ENTITLEMENT.
func (w *world) setMemberPool(user, pool string) {
	s := w.oracle.scope(user)
	if !s.ent.exists {
		w.logf("access: %s has no entitlement to name pool %q in", user, pool)
		return // an update would write a partial item
	}
	s.lazyReset(w.now)
	switch pool {
	case "":
		w.access(user, "REMOVE #p", map[string]string{"#p": usage.AttrPool}, nil)
		s.ent.pool = attr{}
	case "N":
		w.access(user, "SET #p = :p", map[string]string{"#p": usage.AttrPool}, map[string]types.AttributeValue{":p": n("7")})
		s.ent.pool = attr{kind: "N", num: usage.DecimalFromInt(7)}
	case "empty":
		w.access(user, "SET #p = :p", map[string]string{"#p": usage.AttrPool}, map[string]types.AttributeValue{":p": &types.AttributeValueMemberS{Value: ""}})
		s.ent.pool = attr{kind: "S"}
	default:
		w.access(user, "SET #p = :p", map[string]string{"#p": usage.AttrPool}, map[string]types.AttributeValue{":p": &types.AttributeValueMemberS{Value: pool}})
		s.ent.pool = attr{kind: "S", str: pool}
	}
	w.logf("access: %s pool=%q", user, pool)
}

// checkPool compares pool id's item and notifications with the oracle's,
// and checks the oracle against the ledger: the pool's used is what its
// members' entries of the pool's period drew from its allowance and keep
// drawn (their draws less the give-backs), its overageUsed likewise, and
// neither is above its limit (unless access-service wrote them so).
func (w *world) checkPool(id string) {
	name := poolKey(id)
	s := w.oracle.scope(name)
	s.lazyReset(w.now)
	res, err := w.real.GetItem(w.ctx, &awsdynamodb.GetItemInput{TableName: aws.String(w.entTable), Key: poolItemKey(id), ConsistentRead: aws.Bool(true)})
	if err != nil {
		w.t.Fatal(err)
	}
	w.history[name] = append(w.history[name], res.Item)
	if (res.Item != nil) != s.ent.exists {
		w.fail("pool %s: item exists %v, oracle %v", id, res.Item != nil, s.ent.exists)
		return
	}
	if s.ent.exists && !s.ent.malformed() {
		current := true
		if s.ent.resetPeriod == "DAILY" {
			ps, _ := res.Item["periodStart"].(*types.AttributeValueMemberS)
			current = ps != nil && ps.Value >= periodOf("DAILY", w.now)
		}
		used, overage := usage.Decimal{}, usage.Decimal{}
		if u, ok := res.Item["used"].(*types.AttributeValueMemberN); ok && current {
			used = usage.MustDecimal(u.Value)
		}
		if v, ok := res.Item[usage.AttrOverageUsed].(*types.AttributeValueMemberN); ok && current {
			overage = usage.MustDecimal(v.Value)
		}
		if used.Cmp(s.ent.usedNum()) != 0 {
			w.fail("pool %s: used %s in DynamoDB, oracle %s", id, used, s.ent.usedNum())
		}
		if overage.Cmp(s.ent.overageUsed) != 0 {
			w.fail("pool %s: overageUsed %s in DynamoDB, oracle %s", id, overage, s.ent.overageUsed)
		}
		if !s.edited {
			if sum := w.oracle.poolKept(id, bucketAllowance); sum.Cmp(s.ent.usedNum()) != 0 {
				w.fail("pool %s: oracle used %s is not its members' draws kept %s (suite bug)", id, s.ent.usedNum(), sum)
			}
			if l := s.ent.limitNum(); l != nil && used.Cmp(*l) > 0 {
				w.fail("pool %s: used %s above the limit %s", id, used, *l)
			}
		}
		if !s.edited && !s.overageEdited {
			if sum := w.oracle.poolKept(id, bucketOverage); sum.Cmp(s.ent.overageUsed) != 0 {
				w.fail("pool %s: oracle overageUsed %s is not its members' overage draws kept %s (suite bug)", id, s.ent.overageUsed, sum)
			}
		}
		if l := s.ent.overageLimit; !s.overageEdited && (l.kind == "N" && overage.Cmp(l.num) > 0 || l.kind == "" && overage.Sign() > 0) {
			w.fail("pool %s: overageUsed %s beyond overageLimit %v", id, overage, l.num)
		}
	}
	w.checkNotes(name, poolScopeOf(id), s)
}
