package dynamodb

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/usage-event-service/usage-event-service/usage"
)

// TestTranslate pins the mechanical translation of a plan's writes into
// DynamoDB expressions, without DynamoDB: every precondition and
// assignment of the vocabulary, alone and combined.
// anchorMap is a value of another type than a decision reads, pinned as
// it was read.
var anchorMap = &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"at": &types.AttributeValueMemberS{Value: "noon"}}}

func TestTranslate(t *testing.T) {
	n := func(s string) types.AttributeValue { return &types.AttributeValueMemberN{Value: s} }
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	num := func(v string) usage.Value { return usage.NumberValue(usage.MustDecimal(v)) }
	tests := []struct {
		name      string
		write     usage.Write
		condition string
		update    string
		names     map[string]string
		values    map[string]types.AttributeValue
	}{
		{
			name:      "ledger put: the key must not be applied yet",
			write:     usage.Write{Action: usage.Put, Conds: []usage.Cond{{Op: usage.OpNotExists}}},
			condition: "attribute_not_exists(#pk)",
			names:     map[string]string{"#pk": "pk"},
			values:    map[string]types.AttributeValue{},
		},
		{
			name: "increment under a ceiling, absent used meaning 0",
			write: usage.Write{Action: usage.Update,
				Conds: []usage.Cond{{Op: usage.OpExists}, usage.Pin(usage.AttrLimit, num("10")), usage.Pin(usage.AttrResetPeriod, usage.Value{}),
					{Op: usage.OpLE, Attr: usage.AttrUsed, Value: num("7"), OrAbsent: true}},
				Set: []usage.Assign{{Attr: usage.AttrUsed, Value: num("3"), Add: true}}},
			condition: "attribute_exists(#pk) AND #limit = :limit AND attribute_not_exists(#resetPeriod) AND (attribute_not_exists(#used) OR #used <= :used)",
			update:    "SET #used = if_not_exists(#used, :zero) + :add_used",
			names:     map[string]string{"#pk": "pk", "#limit": "limit", "#resetPeriod": "resetPeriod", "#used": "used"},
			values:    map[string]types.AttributeValue{":limit": n("10"), ":used": n("7"), ":zero": n("0"), ":add_used": n("3")},
		},
		{
			name: "a negative ceiling cannot be met by an absent used",
			write: usage.Write{Action: usage.Update,
				Conds: []usage.Cond{{Op: usage.OpLE, Attr: usage.AttrUsed, Value: num("-1")}},
				Set:   []usage.Assign{{Attr: usage.AttrUsed, Value: num("11"), Add: true}}},
			condition: "#used <= :used",
			update:    "SET #used = if_not_exists(#used, :zero) + :add_used",
			names:     map[string]string{"#used": "used"},
			values:    map[string]types.AttributeValue{":used": n("-1"), ":zero": n("0"), ":add_used": n("11")},
		},
		{
			name: "reset: exact new values, used still a number",
			write: usage.Write{Action: usage.Update,
				Conds: []usage.Cond{usage.Pin(usage.AttrPeriodStart, usage.StringValue("2026-10-01T00:00:00Z")),
					{Op: usage.OpKind, Attr: usage.AttrUsed, Kind: usage.KindNumber, OrAbsent: true}},
				Set: []usage.Assign{{Attr: usage.AttrUsed, Value: num("2")},
					{Attr: usage.AttrPeriodStart, Value: usage.StringValue("2026-11-01T00:00:00Z")}}},
			condition: "#periodStart = :periodStart AND (attribute_not_exists(#used) OR attribute_type(#used, :typeN))",
			update:    "SET #used = :new_used, #periodStart = :new_periodStart",
			names:     map[string]string{"#periodStart": "periodStart", "#used": "used"},
			values: map[string]types.AttributeValue{":periodStart": s("2026-10-01T00:00:00Z"), ":typeN": s("N"),
				":new_used": n("2"), ":new_periodStart": s("2026-11-01T00:00:00Z")},
		},
		{
			name: "confirming a rejection pins NULL, other types and values",
			write: usage.Write{Action: usage.Check, Conds: []usage.Cond{
				usage.Pin(usage.AttrLimit, usage.Value{Kind: usage.KindNull}),
				usage.Pin(usage.AttrResetAnchor, usage.Value{Kind: usage.KindOther, Raw: anchorMap}),
				usage.Pin(usage.AttrUsed, num("4")),
				{Op: usage.OpLT, Attr: "refunded", Value: num("4")},
			}},
			condition: "attribute_type(#limit, :typeNULL) AND #resetAnchor = :resetAnchor AND #used = :used AND #refunded < :refunded",
			names:     map[string]string{"#limit": "limit", "#resetAnchor": "resetAnchor", "#used": "used", "#refunded": "refunded"},
			values:    map[string]types.AttributeValue{":typeNULL": s("NULL"), ":resetAnchor": anchorMap, ":used": n("4"), ":refunded": n("4")},
		},
		{
			name: "two values for one attribute get two placeholders",
			write: usage.Write{Action: usage.Update,
				Conds: []usage.Cond{usage.Pin(usage.AttrUsed, num("5"))},
				Set:   []usage.Assign{{Attr: usage.AttrUsed, Value: num("6")}}},
			condition: "#used = :used",
			update:    "SET #used = :new_used",
			names:     map[string]string{"#used": "used"},
			values:    map[string]types.AttributeValue{":used": n("5"), ":new_used": n("6")},
		},
		{
			name: "settling a hold sets its state and leaves the sparse index",
			write: usage.Write{Action: usage.Update,
				Conds: []usage.Cond{{Op: usage.OpExists}, usage.Pin(usage.LedgerAttrHoldState, usage.StringValue("active"))},
				Set: []usage.Assign{{Attr: usage.LedgerAttrHoldState, Value: usage.StringValue("committed")},
					{Attr: usage.LedgerAttrPendingPK, Remove: true}, {Attr: usage.LedgerAttrPendingAt, Remove: true}}},
			condition: "attribute_exists(#pk) AND #holdState = :holdState",
			update:    "SET #holdState = :new_holdState REMOVE #pendingPk, #pendingAt",
			names:     map[string]string{"#pk": "pk", "#holdState": "holdState", "#pendingPk": "pendingPk", "#pendingAt": "pendingAt"},
			values:    map[string]types.AttributeValue{":holdState": s("active"), ":new_holdState": s("committed")},
		},
		{
			name: "a draw from one grant: a document path, at least what it takes, resting on the version",
			write: usage.Write{Action: usage.Update,
				Conds: []usage.Cond{usage.Pin(usage.AttrGrantsVersion, num("3")),
					{Op: usage.OpGE, Attr: usage.AttrGrants, Field: []string{"top-up.1", usage.GrantFieldRemaining}, Value: num("2")},
					{Op: usage.OpEquals, Attr: usage.AttrGrants, Field: []string{"first", usage.GrantFieldRemaining}, Value: num("0")},
					{Op: usage.OpAbsent, Attr: usage.AttrGrants, Field: []string{"voided"}}},
				Set: []usage.Assign{{Attr: usage.AttrGrants, Field: []string{"top-up.1", usage.GrantFieldRemaining}, Value: num("-2"), Add: true}}},
			condition: "#grantsVersion = :grantsVersion AND #grants.#top_up_1.#remaining >= :grants AND #grants.#first.#remaining = :grants_2 AND attribute_not_exists(#grants.#voided)",
			update:    "SET #grants.#top_up_1.#remaining = #grants.#top_up_1.#remaining + :add_grants",
			names: map[string]string{"#grantsVersion": "grantsVersion", "#grants": "grants", "#top_up_1": "top-up.1", "#remaining": "remaining",
				"#first": "first", "#voided": "voided"},
			values: map[string]types.AttributeValue{":grantsVersion": n("3"), ":grants": n("2"), ":grants_2": n("0"), ":add_grants": n("-2")},
		},
		{
			name: "a new grants map, built by the domain, written as a map",
			write: usage.Write{Action: usage.Update,
				Set: []usage.Assign{{Attr: usage.AttrGrants, Value: usage.MapValue(map[string]usage.Value{"g": usage.MapValue(map[string]usage.Value{"remaining": num("5")})})}}},
			update: "SET #grants = :new_grants",
			names:  map[string]string{"#grants": "grants"},
			values: map[string]types.AttributeValue{":new_grants": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
				"g": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"remaining": n("5")}}}}},
		},
		{
			name:      "attribute names that are not identifiers",
			write:     usage.Write{Action: usage.Check, Conds: []usage.Cond{{Op: usage.OpExists}, {Op: usage.OpAbsent, Attr: "user-id"}, {Op: usage.OpAbsent, Attr: "user.id"}}},
			condition: "attribute_exists(#PK_1) AND attribute_not_exists(#user_id) AND attribute_not_exists(#user_id_2)",
			names:     map[string]string{"#PK_1": "PK-1", "#user_id": "user-id", "#user_id_2": "user.id"},
			values:    map[string]types.AttributeValue{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keyAttr := "pk"
			if tt.name == "attribute names that are not identifiers" {
				keyAttr = "PK-1"
			}
			got := translate(tt.write, keyAttr)
			if got.condition != tt.condition {
				t.Errorf("condition\n got %s\nwant %s", got.condition, tt.condition)
			}
			if got.update != tt.update {
				t.Errorf("update\n got %s\nwant %s", got.update, tt.update)
			}
			if !reflect.DeepEqual(got.names, tt.names) {
				t.Errorf("names %v, want %v", got.names, tt.names)
			}
			if !reflect.DeepEqual(got.values, tt.values) {
				t.Errorf("values %v, want %v", got.values, tt.values)
			}
		})
	}
}

// TestTransactionFollowsThePlan: one transaction item per write, in the
// plan's order, on the right table and key, so that cancellation reasons
// map back to writes by index.
func TestTransactionFollowsThePlan(t *testing.T) {
	s := NewStore(nil, Config{EntitlementsTable: "ent", LedgerTable: "ledger"})
	scope := usage.Scope{UserID: "u#1", EntitlementKey: "k"}
	key, _ := s.cfg.Keys.key(scope)
	ent := usage.ParseEntitlement(usage.Item{Exists: true, Attrs: map[string]usage.Value{usage.AttrLimit: usage.NumberValue(usage.MustDecimal("3"))}})
	rec := func(id, amount string) usage.Record {
		ev := usage.NewEvent(scope.UserID, scope.EntitlementKey)
		ev.Amount = usage.MustDecimal(amount)
		return usage.Record{Event: ev, MessageID: id}
	}
	plan := usage.PlanUsage(usage.State{Entitlement: ent}, []usage.Record{rec("m1", "2"), rec("m2", "5")}, s.cfg.Now())
	tx, _ := s.transaction(scope, key, plan)
	if len(tx.TransactItems) != 3 {
		t.Fatalf("%d items, want 3", len(tx.TransactItems))
	}
	u, p, c := tx.TransactItems[0].Update, tx.TransactItems[1].Put, tx.TransactItems[2].ConditionCheck
	if u == nil || *u.TableName != "ent" || u.Key["pk"].(*types.AttributeValueMemberS).Value != "USER#u#1" {
		t.Errorf("item 0 is not the entitlement update: %+v", tx.TransactItems[0])
	}
	if p == nil || *p.TableName != "ledger" || p.Item["sk"].(*types.AttributeValueMemberS).Value != "KEY#m1" ||
		p.Item["pk"].(*types.AttributeValueMemberS).Value != "USER#u%231#ENTITLEMENT#k" || p.Item["amount"].(*types.AttributeValueMemberN).Value != "2" {
		t.Errorf("item 1 is not m1's ledger put: %+v", p)
	}
	if c == nil || *c.TableName != "ledger" || c.Key["sk"].(*types.AttributeValueMemberS).Value != "KEY#m2" || *c.ConditionExpression != "attribute_not_exists(#pk)" {
		t.Errorf("item 2 is not m2's ledger check: %+v", c)
	}
	if tx.ClientRequestToken == nil || len(*tx.ClientRequestToken) != 32 {
		t.Errorf("no client request token")
	}
}

// TestTranslateLongGrantIDs: a write that rests on the most grants there
// can be, each with an ID of the longest length, stays within DynamoDB's
// expression limits: no placeholder over 255 bytes, no expression over
// 4 KB, and IDs cut alike get placeholders of their own.
func TestTranslateLongGrantIDs(t *testing.T) {
	var w usage.Write
	w.Target, w.Action = usage.EntitlementItem, usage.Update
	for i := range usage.MaxActiveGrants {
		id := fmt.Sprintf("%s-%03d", strings.Repeat("g", 252), i)
		w.Conds = append(w.Conds, usage.Cond{Op: usage.OpEquals, Attr: usage.AttrGrants, Field: []string{id},
			Value: usage.MapValue(map[string]usage.Value{usage.GrantFieldRemaining: usage.NumberValue(usage.MustDecimal("1"))})})
	}
	w.Set = []usage.Assign{{Attr: usage.AttrGrants, Field: []string{w.Conds[0].Field[0], usage.GrantFieldRemaining},
		Value: usage.NumberValue(usage.MustDecimal("-1")), Add: true}}
	got := translate(w, "PK")
	if len(got.condition) > 4096 || len(got.update) > 4096 {
		t.Errorf("condition of %d bytes, update of %d", len(got.condition), len(got.update))
	}
	ids := map[string]bool{}
	for p, name := range got.names {
		if len(p) > 255 {
			t.Errorf("placeholder of %d bytes", len(p))
		}
		ids[name] = true
	}
	if len(ids) != len(got.names) || len(ids) != usage.MaxActiveGrants+2 {
		t.Errorf("%d names for %d placeholders, want %d", len(ids), len(got.names), usage.MaxActiveGrants+2)
	}
}
