package dynamodb

import (
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/usage-event-service/usage-event-service/usage"
)

// expression is one item's condition and update expressions with their
// placeholders, translated mechanically from a usage.Write.
type expression struct {
	condition string
	update    string
	names     map[string]string
	values    map[string]types.AttributeValue
}

// translate renders a write's preconditions and assignments. keyAttr is
// the partition key attribute of the write's table, whose presence is
// the item's existence.
func translate(w usage.Write, keyAttr string) expression {
	e := expression{names: map[string]string{}, values: map[string]types.AttributeValue{}}
	parts := make([]string, 0, len(w.Conds))
	for _, c := range w.Conds {
		parts = append(parts, e.cond(c, keyAttr))
	}
	e.condition = strings.Join(parts, " AND ")
	if w.Action == usage.Update {
		var sets, removes []string
		for _, a := range w.Set {
			if a.Remove {
				removes = append(removes, e.path(a.Attr, a.Field))
			} else {
				sets = append(sets, e.assign(a))
			}
		}
		var clauses []string
		if len(sets) > 0 {
			clauses = append(clauses, "SET "+strings.Join(sets, ", "))
		}
		if len(removes) > 0 {
			clauses = append(clauses, "REMOVE "+strings.Join(removes, ", "))
		}
		e.update = strings.Join(clauses, " ")
	}
	return e
}

func (e *expression) cond(c usage.Cond, keyAttr string) string {
	var s string
	switch c.Op {
	case usage.OpExists:
		return "attribute_exists(" + e.name(keyAttr) + ")"
	case usage.OpNotExists:
		return "attribute_not_exists(" + e.name(keyAttr) + ")"
	case usage.OpAbsent:
		return "attribute_not_exists(" + e.path(c.Attr, c.Field) + ")"
	case usage.OpEquals:
		s = e.path(c.Attr, c.Field) + " = " + e.value(c.Attr, attributeValue(c.Value))
	case usage.OpLE:
		s = e.path(c.Attr, c.Field) + " <= " + e.value(c.Attr, attributeValue(c.Value))
	case usage.OpLT:
		s = e.path(c.Attr, c.Field) + " < " + e.value(c.Attr, attributeValue(c.Value))
	case usage.OpGE:
		s = e.path(c.Attr, c.Field) + " >= " + e.value(c.Attr, attributeValue(c.Value))
	case usage.OpKind:
		code := typeCodes[c.Kind]
		s = "attribute_type(" + e.path(c.Attr, c.Field) + ", " + e.value("type"+code, &types.AttributeValueMemberS{Value: code}) + ")"
	default:
		panic(fmt.Sprintf("dynamodb: unknown precondition op %d", c.Op))
	}
	if c.OrAbsent {
		return "(attribute_not_exists(" + e.path(c.Attr, c.Field) + ") OR " + s + ")"
	}
	return s
}

func (e *expression) assign(a usage.Assign) string {
	n := e.path(a.Attr, a.Field)
	switch {
	case a.Add && len(a.Field) > 0:
		// Below the top level the value must exist: a condition says so.
		return n + " = " + n + " + " + e.value("add_"+a.Attr, attributeValue(a.Value))
	case a.Add:
		zero := e.value("zero", &types.AttributeValueMemberN{Value: "0"})
		return n + " = if_not_exists(" + n + ", " + zero + ") + " + e.value("add_"+a.Attr, attributeValue(a.Value))
	}
	return n + " = " + e.value("new_"+a.Attr, attributeValue(a.Value))
}

// path is the document path of attr and the map keys below it.
func (e *expression) path(attr string, field []string) string {
	p := e.name(attr)
	for _, f := range field {
		p += "." + e.name(f)
	}
	return p
}

// name returns the placeholder of an attribute name: "#" and the name
// itself where it is a plain identifier, so expressions stay readable;
// cut to maxPlaceholder, because DynamoDB refuses a placeholder longer
// than 255 bytes and an expression longer than 4 KB, and a grant's ID
// (a path below grants) may be 256 characters.
func (e *expression) name(attr string) string {
	base := "#" + identifier(attr)
	if len(base) > maxPlaceholder {
		base = base[:maxPlaceholder]
	}
	for p, i := base, 2; ; p, i = fmt.Sprintf("%s_%d", base, i), i+1 {
		if got, ok := e.names[p]; !ok || got == attr {
			e.names[p] = attr
			return p
		}
	}
}

// value returns a new placeholder for v, named after hint; the same
// value under the same hint shares one placeholder.
func (e *expression) value(hint string, v types.AttributeValue) string {
	base := ":" + identifier(hint)
	for p, i := base, 2; ; p, i = fmt.Sprintf("%s_%d", base, i), i+1 {
		got, ok := e.values[p]
		if !ok {
			e.values[p] = v
			return p
		}
		if sameValue(got, v) {
			return p
		}
	}
}

// maxPlaceholder bounds a name placeholder's length (before a suffix
// that tells apart names cut alike): MaxActiveGrants paths to grants
// of the longest IDs stay well within an expression's 4 KB.
const maxPlaceholder = 24

func identifier(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			b[i] = '_'
		}
	}
	return string(b)
}

func sameValue(a, b types.AttributeValue) bool {
	switch x := a.(type) {
	case *types.AttributeValueMemberN:
		y, ok := b.(*types.AttributeValueMemberN)
		return ok && x.Value == y.Value
	case *types.AttributeValueMemberS:
		y, ok := b.(*types.AttributeValueMemberS)
		return ok && x.Value == y.Value
	case *types.AttributeValueMemberNULL:
		_, ok := b.(*types.AttributeValueMemberNULL)
		return ok
	}
	return false
}

// typeCodes are DynamoDB's type codes of the kinds a precondition tests.
var typeCodes = map[usage.Kind]string{usage.KindNumber: "N", usage.KindString: "S", usage.KindNull: "NULL", usage.KindMap: "M"}
