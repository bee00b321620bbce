package dynamodb

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/usage-event-service/usage-event-service/usage"
)

// The entitlement attributes metering reads. Everything else on
// access-service's item is neither read nor written.
const (
	attrLimit       = "limit"
	attrUsed        = "used"
	attrResetPeriod = "resetPeriod"
	attrResetAnchor = "resetAnchor"
	attrPeriodStart = "periodStart"
)

var stateAttrs = []string{attrLimit, attrUsed, attrResetPeriod, attrResetAnchor, attrPeriodStart}

// observed is an entitlement as read, together with the raw attribute
// values, so that the write's condition can insist on exactly what was
// seen.
type observed struct {
	exists bool
	raw    map[string]types.AttributeValue // only stateAttrs
	ent    usage.Entitlement
}

// read fetches the state with an eventually consistent, projected GetItem:
// the cheapest read there is. A stale answer is caught by the condition of
// the write that follows.
func (s *Store) read(ctx context.Context, pk, sk string) (observed, error) {
	names := map[string]string{"#pk": s.cfg.Keys.PartitionAttr}
	proj := []string{"#pk"}
	for i, a := range stateAttrs {
		n := fmt.Sprintf("#a%d", i)
		names[n] = a
		proj = append(proj, n)
	}
	res, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.cfg.EntitlementsTable),
		Key: map[string]types.AttributeValue{
			s.cfg.Keys.PartitionAttr: &types.AttributeValueMemberS{Value: pk},
			s.cfg.Keys.SortAttr:      &types.AttributeValueMemberS{Value: sk},
		},
		ProjectionExpression:     aws.String(strings.Join(proj, ", ")),
		ExpressionAttributeNames: names,
	})
	if err != nil {
		return observed{}, err
	}
	return s.parse(res.Item), nil
}

// parse interprets an item (nil: absent). A NULL attribute is read as
// absent, except used, which must be a number to be added to.
func (s *Store) parse(item map[string]types.AttributeValue) observed {
	if item == nil {
		return observed{ent: usage.Entitlement{Exists: false}}
	}
	o := observed{exists: true, raw: map[string]types.AttributeValue{}, ent: usage.Entitlement{Exists: true, ResetPeriod: usage.ResetNone}}
	for _, a := range stateAttrs {
		if v, ok := item[a]; ok {
			o.raw[a] = v
		}
	}
	malformed := func(format string, args ...any) {
		if o.ent.Malformed == nil {
			o.ent.Malformed = fmt.Errorf(format, args...)
		}
	}
	switch v := o.raw[attrLimit].(type) {
	case nil, *types.AttributeValueMemberNULL:
	case *types.AttributeValueMemberN:
		if d, err := usage.ParseDecimal(v.Value); err != nil {
			malformed("limit %q: %v", v.Value, err)
		} else {
			o.ent.Limit = &d
		}
	default:
		malformed("limit must be a number")
	}
	switch v := o.raw[attrUsed].(type) {
	case nil:
	case *types.AttributeValueMemberN:
		if d, err := usage.ParseDecimal(v.Value); err != nil {
			malformed("used %q: %v", v.Value, err)
		} else {
			o.ent.Used = d
		}
	default:
		malformed("used must be a number")
	}
	switch v := o.raw[attrResetPeriod].(type) {
	case nil, *types.AttributeValueMemberNULL:
	case *types.AttributeValueMemberS:
		if p, err := usage.ParseResetPeriod(v.Value); err != nil {
			malformed("resetPeriod %q: %v", v.Value, err)
		} else {
			o.ent.ResetPeriod = p
		}
	default:
		malformed("resetPeriod must be a string")
	}
	for _, a := range []string{attrResetAnchor, attrPeriodStart} {
		switch v := o.raw[a].(type) {
		case nil, *types.AttributeValueMemberNULL:
		case *types.AttributeValueMemberS:
			t, err := usage.ParseInstant(v.Value)
			if err != nil {
				malformed("%s %q: %v", a, v.Value, err)
				continue
			}
			if a == attrResetAnchor {
				o.ent.ResetAnchor = &t
			} else {
				o.ent.PeriodStart = &t
			}
		default:
			malformed("%s must be an RFC 3339 string", a)
		}
	}
	return o
}

// after is the state the cache keeps after a successful write of plan.
// used is a lower bound (others may have added since): good enough for
// the next plan, whose condition is checked anyway.
func (o observed) after(plan usage.Plan) observed {
	if !plan.Applied() {
		return o
	}
	n := observed{exists: o.exists, ent: o.ent, raw: make(map[string]types.AttributeValue, len(o.raw)+2)}
	for k, v := range o.raw {
		n.raw[k] = v
	}
	n.ent.Used = plan.NewUsed
	n.raw[attrUsed] = number(plan.NewUsed)
	if plan.Reset {
		ps := plan.PeriodStart
		n.ent.PeriodStart = &ps
		n.raw[attrPeriodStart] = &types.AttributeValueMemberS{Value: usage.FormatInstant(ps)}
	}
	return n
}

type condition struct {
	expr   string
	names  map[string]string
	values map[string]types.AttributeValue
}

// condition is what must still hold for plan's decisions to be right:
// the item's existence, its limit and period configuration, the period it
// is in, and used — exactly when a rejection depended on it, otherwise
// only "used is at most limit minus what we add", which concurrent
// increments by other consumers do not disturb.
func (o observed) condition(pkAttr string, plan usage.Plan) condition {
	c := condition{names: map[string]string{"#pk": pkAttr}, values: map[string]types.AttributeValue{}}
	if !o.exists {
		c.expr = "attribute_not_exists(#pk)"
		return c
	}
	parts := []string{"attribute_exists(#pk)"}
	same := func(attr, tag string) {
		name := "#" + tag
		c.names[name] = attr
		switch v := o.raw[attr].(type) {
		case nil:
			parts = append(parts, "attribute_not_exists("+name+")")
		case *types.AttributeValueMemberNULL:
			c.values[":null"] = &types.AttributeValueMemberS{Value: "NULL"}
			parts = append(parts, "attribute_type("+name+", :null)")
		default:
			c.values[":"+tag] = v
			parts = append(parts, name+" = :"+tag)
		}
	}
	same(attrLimit, "limit")
	same(attrResetPeriod, "resetPeriod")
	same(attrResetAnchor, "resetAnchor")
	periodic := o.ent.ResetPeriod != usage.ResetNone
	switch {
	case !plan.Applied() || o.ent.Malformed != nil:
		// Confirming rejections: everything they rested on.
		same(attrUsed, "used")
		same(attrPeriodStart, "periodStart")
	case plan.Reset:
		same(attrPeriodStart, "periodStart")
	default:
		if periodic {
			same(attrPeriodStart, "periodStart")
		}
		switch {
		case plan.DependsOnUsed:
			same(attrUsed, "used")
		case o.ent.Limit != nil:
			c.names["#used"] = attrUsed
			c.values[":ceiling"] = number(plan.UsedCeiling)
			if plan.UsedCeiling.Sign() >= 0 {
				parts = append(parts, "(attribute_not_exists(#used) OR #used <= :ceiling)")
			} else {
				parts = append(parts, "#used <= :ceiling")
			}
		}
	}
	c.expr = strings.Join(parts, " AND ")
	return c
}
