package infra_test

// The harness behind module_test.go: it parses a Terraform module with
// hclsyntax and evaluates its expressions the way Terraform would, without
// Terraform or a provider:
//
//   - var.* comes from the test's inputs, else the variable's default;
//   - local.* is evaluated to a fixpoint;
//   - a resource or data source attribute (aws_sqs_queue.main.arn) evaluates
//     to its own address as a string ("aws_sqs_queue.main.arn"), so a test
//     can assert which resource an expression points at, even through locals,
//     jsonencode and conditionals; an instance of a counted one
//     (aws_lambda_function.decisions[0].arn) likewise, index included
//     ("aws_lambda_function.decisions[0].arn"), whatever the count (a test
//     evaluates count itself); the account, partition and region data
//     sources get fixed, realistic values;
//   - the functions the module uses come from cty's stdlib (the same code
//     Terraform calls) plus a few Terraform-only ones defined below.
//
// What cannot be evaluated (filebase64sha256, a depends_on list) is checked
// through its source text.

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// Values the fixed data sources evaluate to.
const (
	testAccountID = "111122223333"
	testPartition = "aws"
	testRegion    = "eu-west-1"
)

var knownDataAttributes = map[string]cty.Value{
	"data.aws_caller_identity.current.account_id": cty.StringVal(testAccountID),
	"data.aws_partition.current.partition":        cty.StringVal(testPartition),
	"data.aws_region.current.name":                cty.StringVal(testRegion),
}

// tfModule is one parsed Terraform module (all *.tf files of a directory).
type tfModule struct {
	dir     string
	sources map[string][]byte
	blocks  []*hclsyntax.Block
	locals  map[string]hclsyntax.Expression
}

var moduleCache sync.Map // dir -> *tfModule

// loadModule parses every .tf file in dir (relative to infra/), once per test binary.
func loadModule(t *testing.T, dir string) *tfModule {
	t.Helper()
	if m, ok := moduleCache.Load(dir); ok {
		return m.(*tfModule)
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no .tf files in %s (err %v)", dir, err)
	}
	m := &tfModule{dir: dir, sources: map[string][]byte{}}
	parser := hclparse.NewParser()
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		f, diags := parser.ParseHCL(src, p)
		if diags.HasErrors() {
			t.Fatalf("parse %s: %s", p, diags.Error())
		}
		m.sources[p] = src
		m.blocks = append(m.blocks, f.Body.(*hclsyntax.Body).Blocks...)
	}
	m.locals = m.localExprs()
	actual, _ := moduleCache.LoadOrStore(dir, m)
	return actual.(*tfModule)
}

// blocksOf returns the top-level blocks of a kind ("resource", "data", ...),
// optionally only those whose first label is typ.
func (m *tfModule) blocksOf(kind, typ string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, b := range m.blocks {
		if b.Type == kind && (typ == "" || (len(b.Labels) > 0 && b.Labels[0] == typ)) {
			out = append(out, b)
		}
	}
	return out
}

// block returns the one top-level block with these labels, failing the test if absent.
func (m *tfModule) block(t *testing.T, kind string, labels ...string) *hclsyntax.Block {
	t.Helper()
	for _, b := range m.blocks {
		if b.Type == kind && slices.Equal(b.Labels, labels) {
			return b
		}
	}
	t.Fatalf("%s: no %s %q", m.dir, kind, strings.Join(labels, "."))
	return nil
}

func (m *tfModule) resource(t *testing.T, typ, name string) *hclsyntax.Block {
	t.Helper()
	return m.block(t, "resource", typ, name)
}

// source returns the text of a node as written in the file.
func (m *tfModule) source(rng hcl.Range) string {
	return string(rng.SliceBytes(m.sources[rng.Filename]))
}

// attr returns a block's attribute, failing the test if it is not set.
func attr(t *testing.T, b *hclsyntax.Block, name string) *hclsyntax.Attribute {
	t.Helper()
	a, ok := b.Body.Attributes[name]
	if !ok {
		t.Fatalf("%s %s does not set %s", b.Type, strings.Join(b.Labels, "."), name)
	}
	return a
}

// nested returns the nested blocks of a type (static blocks only).
func nested(b *hclsyntax.Block, typ string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, nb := range b.Body.Blocks {
		if nb.Type == typ {
			out = append(out, nb)
		}
	}
	return out
}

func oneNested(t *testing.T, b *hclsyntax.Block, typ string) *hclsyntax.Block {
	t.Helper()
	bs := nested(b, typ)
	if len(bs) != 1 {
		t.Fatalf("%s %s: want exactly one %s block, have %d", b.Type, strings.Join(b.Labels, "."), typ, len(bs))
	}
	return bs[0]
}

// evaluator evaluates expressions of one module for one set of inputs.
// Locals are evaluated on first use and memoised.
type evaluator struct {
	m          *tfModule
	vars       map[string]cty.Value
	locals     map[string]cty.Value
	failed     map[string]bool // locals that cannot be evaluated offline
	evaluating map[string]bool // cycle guard
}

// localExprs returns every local of the module by name.
func (m *tfModule) localExprs() map[string]hclsyntax.Expression {
	out := map[string]hclsyntax.Expression{}
	for _, b := range m.blocksOf("locals", "") {
		for name, a := range b.Body.Attributes {
			out[name] = a.Expr
		}
	}
	return out
}

// evaluator builds the var scope for the given inputs. Every variable
// without a default must be among the inputs; an input that is not a
// declared variable fails the test.
func (m *tfModule) evaluator(t *testing.T, inputs map[string]cty.Value) *evaluator {
	t.Helper()
	e := &evaluator{m: m, vars: map[string]cty.Value{}, locals: map[string]cty.Value{}, failed: map[string]bool{}, evaluating: map[string]bool{}}
	declared := map[string]bool{}
	for _, b := range m.blocksOf("variable", "") {
		name := b.Labels[0]
		declared[name] = true
		if v, ok := inputs[name]; ok {
			e.vars[name] = v
			continue
		}
		def, ok := b.Body.Attributes["default"]
		if !ok {
			t.Fatalf("%s: variable %q has no default and the test gives no value", m.dir, name)
		}
		v, diags := def.Expr.Value(nil)
		if diags.HasErrors() {
			t.Fatalf("%s: default of %q is not a constant: %s", m.dir, name, diags.Error())
		}
		e.vars[name] = v
	}
	for name := range inputs {
		if !declared[name] {
			t.Fatalf("%s: test input %q is not a declared variable", m.dir, name)
		}
	}
	return e
}

// localValue evaluates local.name once; false if it cannot be evaluated offline.
func (e *evaluator) localValue(name string) (cty.Value, bool) {
	if v, ok := e.locals[name]; ok {
		return v, true
	}
	expr, ok := e.m.locals[name]
	if !ok || e.failed[name] || e.evaluating[name] {
		return cty.NilVal, false
	}
	e.evaluating[name] = true
	v, diags := expr.Value(e.context(expr, nil))
	delete(e.evaluating, name)
	if diags.HasErrors() || !v.IsWhollyKnown() {
		e.failed[name] = true
		return cty.NilVal, false
	}
	e.locals[name] = v
	return v, true
}

// local returns an evaluated local value, failing the test if it could not be evaluated.
func (e *evaluator) local(t *testing.T, name string) cty.Value {
	t.Helper()
	v, ok := e.localValue(name)
	if !ok {
		t.Fatalf("%s: local.%s is missing or cannot be evaluated offline", e.m.dir, name)
	}
	return v
}

// eval evaluates an expression, failing the test on any error. extra adds
// variables (e.g. a dynamic block's iterator).
func (e *evaluator) eval(t *testing.T, expr hclsyntax.Expression, extra map[string]cty.Value) cty.Value {
	t.Helper()
	v, diags := expr.Value(e.context(expr, extra))
	if diags.HasErrors() {
		t.Fatalf("%s: cannot evaluate %s: %s", e.m.dir, e.m.source(expr.Range()), diags.Error())
	}
	return v
}

// evalAttr evaluates a block's attribute.
func (e *evaluator) evalAttr(t *testing.T, b *hclsyntax.Block, name string) cty.Value {
	t.Helper()
	return e.eval(t, attr(t, b, name).Expr, nil)
}

// context builds the evaluation context for one expression: var, local,
// placeholders for the resources and data sources it references, functions.
func (e *evaluator) context(expr hclsyntax.Expression, extra map[string]cty.Value) *hcl.EvalContext {
	for _, trav := range expr.Variables() {
		if names := addressOf(trav); len(names) >= 2 && names[0] == "local" {
			e.localValue(names[1]) // a local that fails stays absent: evaluation reports it
		}
	}
	vars := map[string]cty.Value{
		"var":   cty.ObjectVal(e.vars),
		"local": cty.ObjectVal(e.locals),
	}
	tree := map[string]any{}
	counted := map[string]map[int]map[string]bool{} // type.name -> index -> attributes
	for _, trav := range expr.Variables() {
		root := trav.RootName()
		if _, ok := vars[root]; ok {
			continue
		}
		if _, ok := extra[root]; ok {
			continue
		}
		names := addressOf(trav)
		want := 3 // type.name.attribute
		if root == "data" {
			want = 4 // data.type.name.attribute
		}
		if len(names) == want-1 {
			if i, a, ok := instanceAttr(trav[len(names):]); ok {
				addr := strings.Join(names, ".")
				if counted[addr] == nil {
					counted[addr] = map[int]map[string]bool{}
				}
				if counted[addr][i] == nil {
					counted[addr][i] = map[string]bool{}
				}
				counted[addr][i][a] = true
			}
			continue
		}
		if len(names) < want {
			continue
		}
		names = names[:want]
		addr := strings.Join(names, ".")
		val, ok := knownDataAttributes[addr]
		if !ok {
			val = cty.StringVal(addr)
		}
		insert(tree, names, val)
	}
	for addr, instances := range counted {
		insert(tree, strings.Split(addr, "."), instancePlaceholders(addr, instances))
	}
	for root, sub := range tree {
		vars[root] = toObject(sub)
	}
	for k, v := range extra {
		vars[k] = v
	}
	return &hcl.EvalContext{Variables: vars, Functions: functions}
}

// addressOf returns the leading root and attribute names of a traversal
// (aws_sqs_queue.main.arn); an index or splat step ends the address.
func addressOf(trav hcl.Traversal) []string {
	var names []string
	for _, step := range trav {
		switch s := step.(type) {
		case hcl.TraverseRoot:
			names = append(names, s.Name)
		case hcl.TraverseAttr:
			names = append(names, s.Name)
		default:
			return names
		}
	}
	return names
}

// instanceAttr reads "[i].attribute", what follows a counted resource's
// address in a reference to one of its instances.
func instanceAttr(rest hcl.Traversal) (int, string, bool) {
	if len(rest) < 2 {
		return 0, "", false
	}
	idx, ok := rest[0].(hcl.TraverseIndex)
	a, ok2 := rest[1].(hcl.TraverseAttr)
	if !ok || !ok2 || idx.Key.Type() != cty.Number {
		return 0, "", false
	}
	i, acc := idx.Key.AsBigFloat().Int64()
	if acc != 0 || i < 0 {
		return 0, "", false
	}
	return int(i), a.Name, true
}

// instancePlaceholders is a counted resource as a tuple of instances, each
// attribute referenced its own address ("aws_iam_role.decisions[0].arn").
func instancePlaceholders(addr string, instances map[int]map[string]bool) cty.Value {
	elems := make([]cty.Value, slices.Max(slices.Collect(maps.Keys(instances)))+1)
	for i := range elems {
		attrs := map[string]cty.Value{}
		for a := range instances[i] {
			attrs[a] = cty.StringVal(fmt.Sprintf("%s[%d].%s", addr, i, a))
		}
		elems[i] = cty.ObjectVal(attrs)
	}
	return cty.TupleVal(elems)
}

func insert(tree map[string]any, path []string, val cty.Value) {
	for _, p := range path[:len(path)-1] {
		sub, ok := tree[p].(map[string]any)
		if !ok {
			sub = map[string]any{}
			tree[p] = sub
		}
		tree = sub
	}
	tree[path[len(path)-1]] = val
}

func toObject(node any) cty.Value {
	switch n := node.(type) {
	case cty.Value:
		return n
	case map[string]any:
		attrs := map[string]cty.Value{}
		for k, v := range n {
			attrs[k] = toObject(v)
		}
		return cty.ObjectVal(attrs)
	}
	panic(fmt.Sprintf("unexpected node %T", node))
}

// functions are the Terraform functions the module may use in expressions
// the tests evaluate.
var functions = map[string]function.Function{
	"alltrue":    allTrueFunc,
	"can":        tryfunc.CanFunc,
	"concat":     stdlib.ConcatFunc,
	"contains":   stdlib.ContainsFunc,
	"endswith":   endsWithFunc,
	"floor":      stdlib.FloorFunc,
	"format":     stdlib.FormatFunc,
	"join":       stdlib.JoinFunc,
	"jsondecode": stdlib.JSONDecodeFunc,
	"jsonencode": stdlib.JSONEncodeFunc,
	"keys":       stdlib.KeysFunc,
	"length":     stdlib.LengthFunc,
	"lookup":     stdlib.LookupFunc,
	"lower":      stdlib.LowerFunc,
	"max":        stdlib.MaxFunc,
	"merge":      stdlib.MergeFunc,
	"min":        stdlib.MinFunc,
	"regex":      stdlib.RegexFunc,
	"regexall":   stdlib.RegexAllFunc,
	"replace":    stdlib.ReplaceFunc,
	"sum":        sumFunc,
	"tonumber":   toNumberFunc,
	"trimspace":  stdlib.TrimSpaceFunc,
	"try":        tryfunc.TryFunc,
	"upper":      stdlib.UpperFunc,
}

var allTrueFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "list", Type: cty.List(cty.Bool)}},
	Type:   function.StaticReturnType(cty.Bool),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		for it := args[0].ElementIterator(); it.Next(); {
			_, v := it.Element()
			if v.IsNull() || v.False() {
				return cty.False, nil
			}
		}
		return cty.True, nil
	},
})

var endsWithFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "str", Type: cty.String}, {Name: "suffix", Type: cty.String}},
	Type:   function.StaticReturnType(cty.Bool),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		return cty.BoolVal(strings.HasSuffix(args[0].AsString(), args[1].AsString())), nil
	},
})

var sumFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "list", Type: cty.DynamicPseudoType}},
	Type:   function.StaticReturnType(cty.Number),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		total := cty.Zero
		for it := args[0].ElementIterator(); it.Next(); {
			_, v := it.Element()
			n, err := convert.Convert(v, cty.Number)
			if err != nil {
				return cty.NilVal, err
			}
			total = total.Add(n)
		}
		return total, nil
	},
})

var toNumberFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "v", Type: cty.DynamicPseudoType}},
	Type:   function.StaticReturnType(cty.Number),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		return convert.Convert(args[0], cty.Number)
	},
})

// Conversions from evaluated values.

func asString(t *testing.T, v cty.Value) string {
	t.Helper()
	if v.IsNull() || !v.IsKnown() || v.Type() != cty.String {
		t.Fatalf("want a known string, have %#v", v)
	}
	return v.AsString()
}

func asStrings(t *testing.T, v cty.Value) []string {
	t.Helper()
	if v.IsNull() {
		return nil
	}
	if !v.IsKnown() || !v.CanIterateElements() {
		t.Fatalf("want a known list of strings, have %#v", v)
	}
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, el := it.Element()
		s, err := convert.Convert(el, cty.String)
		if err != nil {
			t.Fatalf("want a list of strings, have element %#v", el)
		}
		out = append(out, asString(t, s))
	}
	return out
}

func asInt(t *testing.T, v cty.Value) int64 {
	t.Helper()
	if v.IsNull() || !v.IsKnown() || v.Type() != cty.Number {
		t.Fatalf("want a known number, have %#v", v)
	}
	i, acc := v.AsBigFloat().Int64()
	if acc != 0 {
		t.Fatalf("want a whole number, have %s", v.AsBigFloat())
	}
	return i
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	sort.Strings(out)
	return slices.Compact(out)
}

// IAM policy documents (data "aws_iam_policy_document").

type principal struct {
	Type        string
	Identifiers []string
}

type condition struct {
	Test     string
	Variable string
	Values   []string
}

type statement struct {
	Doc          string
	Sid          string
	Effect       string
	Actions      []string
	NotActions   []string
	Resources    []string
	NotResources []string
	Principals   []principal
	NotPrincipal []principal
	Conditions   []condition
}

func (s statement) String() string {
	return fmt.Sprintf("%s/%s (%s %v on %v)", s.Doc, s.Sid, s.Effect, s.Actions, s.Resources)
}

// policyStatements returns the statements a policy document renders for the
// evaluator's inputs, expanding dynamic "statement" blocks.
func (e *evaluator) policyStatements(t *testing.T, doc string) []statement {
	t.Helper()
	b := e.m.block(t, "data", "aws_iam_policy_document", doc)
	for name := range b.Body.Attributes {
		if name == "count" { // instances(): whether the document exists at all
			continue
		}
		// source_policy_documents and the like would merge statements this
		// test cannot see.
		t.Fatalf("policy document %s sets %s; keep every statement in its own statement block", doc, name)
	}
	var out []statement
	for _, sb := range b.Body.Blocks {
		switch {
		case sb.Type == "statement":
			out = append(out, e.statement(t, doc, sb.Body, nil))
		case sb.Type == "dynamic" && sb.Labels[0] == "statement":
			iterator := "statement"
			if it, ok := sb.Body.Attributes["iterator"]; ok {
				iterator = e.m.source(it.Expr.Range())
			}
			forEach := e.eval(t, attr(t, sb, "for_each").Expr, nil)
			content := oneNested(t, sb, "content")
			for it := forEach.ElementIterator(); it.Next(); {
				k, v := it.Element()
				iter := cty.ObjectVal(map[string]cty.Value{"key": k, "value": v})
				out = append(out, e.statement(t, doc, content.Body, map[string]cty.Value{iterator: iter}))
			}
		default:
			t.Fatalf("policy document %s: unexpected block %s %v", doc, sb.Type, sb.Labels)
		}
	}
	return out
}

func (e *evaluator) statement(t *testing.T, doc string, body *hclsyntax.Body, extra map[string]cty.Value) statement {
	t.Helper()
	str := func(name, def string) string {
		a, ok := body.Attributes[name]
		if !ok {
			return def
		}
		return asString(t, e.eval(t, a.Expr, extra))
	}
	list := func(name string) []string {
		a, ok := body.Attributes[name]
		if !ok {
			return nil
		}
		return asStrings(t, e.eval(t, a.Expr, extra))
	}
	st := statement{
		Doc:          doc,
		Sid:          str("sid", ""),
		Effect:       str("effect", "Allow"),
		Actions:      list("actions"),
		NotActions:   list("not_actions"),
		Resources:    list("resources"),
		NotResources: list("not_resources"),
	}
	for _, nb := range body.Blocks {
		get := func(name string) cty.Value {
			a, ok := nb.Body.Attributes[name]
			if !ok {
				t.Fatalf("policy document %s: %s block without %s", doc, nb.Type, name)
			}
			return e.eval(t, a.Expr, extra)
		}
		switch nb.Type {
		case "principals", "not_principals":
			p := principal{Type: asString(t, get("type")), Identifiers: asStrings(t, get("identifiers"))}
			if nb.Type == "principals" {
				st.Principals = append(st.Principals, p)
			} else {
				st.NotPrincipal = append(st.NotPrincipal, p)
			}
		case "condition":
			st.Conditions = append(st.Conditions, condition{
				Test:     asString(t, get("test")),
				Variable: asString(t, get("variable")),
				Values:   asStrings(t, get("values")),
			})
		default:
			t.Fatalf("policy document %s: statement has a %s block the test cannot read", doc, nb.Type)
		}
	}
	return st
}

// allPolicyStatements returns the statements of every policy document the
// module renders for the evaluator's inputs (a document with count = 0 has none).
func (e *evaluator) allPolicyStatements(t *testing.T) []statement {
	t.Helper()
	var out []statement
	for _, b := range e.m.blocksOf("data", "aws_iam_policy_document") {
		if e.instances(t, b) > 0 {
			out = append(out, e.policyStatements(t, b.Labels[1])...)
		}
	}
	return out
}

// instances is how many instances of a resource or data source the inputs
// create: its count, or 1 without one. (The module uses no for_each.)
func (e *evaluator) instances(t *testing.T, b *hclsyntax.Block) int64 {
	t.Helper()
	if _, ok := b.Body.Attributes["for_each"]; ok {
		t.Fatalf("%s %s uses for_each, which this harness does not evaluate", b.Type, strings.Join(b.Labels, "."))
	}
	if _, ok := b.Body.Attributes["count"]; !ok {
		return 1
	}
	return asInt(t, e.evalAttr(t, b, "count"))
}

// policyDocName extracts X from the placeholder "data.aws_iam_policy_document.X.json"
// (or "data.aws_iam_policy_document.X[0].json" for a counted document).
func policyDocName(t *testing.T, ref string) string {
	t.Helper()
	name, ok := strings.CutPrefix(ref, "data.aws_iam_policy_document.")
	name, ok2 := strings.CutSuffix(name, ".json")
	name = strings.TrimSuffix(name, "[0]")
	if !ok || !ok2 {
		t.Fatalf("policy is %q, want data.aws_iam_policy_document.<name>.json", ref)
	}
	return name
}
