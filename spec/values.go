package spec

import (
	"fmt"
	"math/big"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// block collects what one block decoder learns: its diagnostics and the
// source ranges of its attributes, keyed by attribute name ("" is the block).
type block struct {
	what   string // e.g. `network "proj1"`, for messages
	diags  hcl.Diagnostics
	ranges map[string]*sdnv1.SourceRange
	// exact, when set, keeps each recorded range with its byte offsets
	// (which the API form drops), for diagnostics found after decoding.
	exact map[*sdnv1.SourceRange]hcl.Range
}

// record notes where attribute key was written.
func (b *block) record(key string, r hcl.Range) {
	sr := SourceRange(r)
	b.ranges[key] = sr
	if b.exact != nil {
		b.exact[sr] = r
	}
}

func newBlock(what string, b *hcl.Block) *block {
	bl := &block{what: what, ranges: map[string]*sdnv1.SourceRange{"": SourceRange(b.DefRange)}}
	if len(b.LabelRanges) > 0 {
		bl.ranges["name"] = SourceRange(b.LabelRanges[0])
	}
	return bl
}

func (b *block) errorf(subject hcl.Range, summary, format string, args ...any) {
	b.diags = append(b.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf(format, args...),
		Subject:  subject.Ptr(),
	})
}

// present returns the attributes of content that are set to something other
// than null (null means "use the default", as in Terraform), and records
// their ranges.
func (b *block) present(content *hcl.BodyContent) hcl.Attributes {
	out := hcl.Attributes{}
	for name, attr := range content.Attributes {
		v, diags := attr.Expr.Value(nil)
		if !diags.HasErrors() && v.IsNull() {
			continue
		}
		out[name] = attr
		b.record(name, attr.Expr.Range())
	}
	return out
}

// required reports each of names that attrs lacks.
func (b *block) required(attrs hcl.Attributes, def hcl.Range, names map[string]string) bool {
	ok := true
	keys := make([]string, 0, len(names))
	for k := range names {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, name := range keys {
		if _, set := attrs[name]; !set {
			b.errorf(def, "Missing required argument",
				"The argument %q is required in %s: %s.", name, b.what, names[name])
			ok = false
		}
	}
	return ok
}

// value evaluates an attribute's expression. Variables and functions are
// not available: a spec file holds literal values only.
func (b *block) value(attr *hcl.Attribute) (cty.Value, bool) {
	v, diags := attr.Expr.Value(nil)
	b.diags = append(b.diags, diags...)
	if diags.HasErrors() || !v.IsWhollyKnown() {
		return cty.NilVal, false
	}
	return v, true
}

// typeError reports a value of the wrong type, with a hint for the common
// mistakes (quotes around a number, a number where a string belongs).
func (b *block) typeError(attr *hcl.Attribute, want string, got cty.Value) {
	hint := ""
	switch {
	case want == "a number" && got.Type() == cty.String:
		hint = fmt.Sprintf(" Write it without quotes, e.g. %s = 23.", attr.Name)
	case want == "a string" && (got.Type() == cty.Number || got.Type() == cty.Bool):
		hint = " Put the value in quotes."
	case want == "a bool" && got.Type() == cty.String:
		hint = fmt.Sprintf(" Write true or false without quotes, e.g. %s = true.", attr.Name)
	}
	b.errorf(attr.Expr.Range(), "Incorrect attribute value type",
		"Attribute %q in %s must be %s, not %s.%s", attr.Name, b.what, want, friendly(got.Type()), hint)
}

func friendly(t cty.Type) string {
	switch {
	case t == cty.String:
		return "a string"
	case t == cty.Number:
		return "a number"
	case t == cty.Bool:
		return "a bool"
	case t.IsObjectType() || t.IsMapType():
		return "a map"
	case t.IsTupleType() || t.IsListType() || t.IsSetType():
		return "a list"
	}
	return t.FriendlyName()
}

// str decodes a string attribute; ok is false when it is absent or wrong.
func (b *block) str(attrs hcl.Attributes, name string) (s string, attr *hcl.Attribute, ok bool) {
	attr = attrs[name]
	if attr == nil {
		return "", nil, false
	}
	v, ok := b.value(attr)
	if !ok {
		return "", attr, false
	}
	if v.Type() != cty.String {
		b.typeError(attr, "a string", v)
		return "", attr, false
	}
	return v.AsString(), attr, true
}

// boolean decodes a bool attribute.
func (b *block) boolean(attrs hcl.Attributes, name string) (val bool, attr *hcl.Attribute, ok bool) {
	attr = attrs[name]
	if attr == nil {
		return false, nil, false
	}
	v, ok := b.value(attr)
	if !ok {
		return false, attr, false
	}
	if v.Type() != cty.Bool {
		b.typeError(attr, "a bool", v)
		return false, attr, false
	}
	return v.True(), attr, true
}

// integer decodes a whole-number attribute within [lo, hi]; outOfRange
// explains the allowed values when it is not.
func (b *block) integer(attrs hcl.Attributes, name string, lo, hi int64, outOfRange string) (n int64, attr *hcl.Attribute, ok bool) {
	attr = attrs[name]
	if attr == nil {
		return 0, nil, false
	}
	v, ok := b.value(attr)
	if !ok {
		return 0, attr, false
	}
	if v.Type() != cty.Number {
		b.typeError(attr, "a number", v)
		return 0, attr, false
	}
	f := v.AsBigFloat()
	if !f.IsInt() {
		b.errorf(attr.Expr.Range(), "Invalid value", "Attribute %q in %s must be a whole number, not %s.",
			name, b.what, f.Text('g', -1))
		return 0, attr, false
	}
	i, acc := f.Int64()
	if acc != big.Exact || i < lo || i > hi {
		b.errorf(attr.Expr.Range(), "Invalid value", "%s %s in %s is out of range: %s.",
			name, f.Text('g', -1), b.what, outOfRange)
		return 0, attr, false
	}
	return i, attr, true
}

// labels decodes the labels attribute (labelMap).
func (b *block) labels(attrs hcl.Attributes) (map[string]string, bool) {
	return b.labelMap(attrs, "labels")
}

// labelMap decodes a map of strings and checks Kubernetes label syntax. Errors
// point at the offending key or value when the expression is a literal map.
func (b *block) labelMap(attrs hcl.Attributes, name string) (map[string]string, bool) {
	attr := attrs[name]
	if attr == nil {
		return nil, true
	}
	type item struct {
		k, v             cty.Value
		kRange, vRange   hcl.Range
		kIsExpr, vIsExpr bool
	}
	var items []item
	if obj, isObj := attr.Expr.(*hclsyntax.ObjectConsExpr); isObj {
		for _, it := range obj.Items {
			k, kd := it.KeyExpr.Value(nil)
			v, vd := it.ValueExpr.Value(nil)
			b.diags = append(b.diags, kd...)
			b.diags = append(b.diags, vd...)
			if kd.HasErrors() || vd.HasErrors() {
				return nil, false
			}
			items = append(items, item{k: k, v: v, kRange: it.KeyExpr.Range(), vRange: it.ValueExpr.Range()})
		}
	} else {
		v, ok := b.value(attr)
		if !ok {
			return nil, false
		}
		if t := v.Type(); !t.IsObjectType() && !t.IsMapType() {
			b.errorf(attr.Expr.Range(), "Incorrect attribute value type",
				`Attribute %q in %s must be a map of strings, like { env = "prod" }, not %s.`, name, b.what, friendly(t))
			return nil, false
		}
		for it := v.ElementIterator(); it.Next(); {
			k, ev := it.Element()
			r := attr.Expr.Range()
			items = append(items, item{k: k, v: ev, kRange: r, vRange: r})
		}
	}

	out := map[string]string{}
	where := map[string]hcl.Range{}
	ok := true
	for _, it := range items {
		if it.k.IsNull() || it.k.Type() != cty.String {
			b.errorf(it.kRange, "Invalid label key", "Label keys in %s must be strings.", b.what)
			ok = false
			continue
		}
		key := it.k.AsString()
		if it.v.IsNull() || it.v.Type() != cty.String {
			hint := ""
			if it.v.Type() == cty.Number || it.v.Type() == cty.Bool {
				hint = " Put the value in quotes."
			}
			got := friendly(it.v.Type())
			if it.v.IsNull() {
				got = "null"
			}
			b.errorf(it.vRange, "Incorrect attribute value type",
				`Label %s in %s must be a string, not %s: labels are a map of strings.%s`, model.Quote(key), b.what, got, hint)
			ok = false
			continue
		}
		val := it.v.AsString()
		if err := model.ValidateLabelKey(key); err != nil {
			b.errorf(it.kRange, "Invalid label key", "Label key %s in %s is not valid: %v.", model.Quote(key), b.what, err)
			ok = false
		}
		if err := model.ValidateLabelValue(val); err != nil {
			b.errorf(it.vRange, "Invalid label value", "Value %s of label %s in %s is not valid: %v.", model.Quote(val), model.Quote(key), b.what, err)
			ok = false
		}
		if first, dup := where[key]; dup {
			b.errorf(it.kRange, "Duplicate label key", "Label %s in %s is already set at %s.", model.Quote(key), b.what, first)
			ok = false
		}
		where[key] = it.kRange
		out[key] = val
	}
	if !ok {
		return nil, false
	}
	if len(out) == 0 {
		return nil, true
	}
	return out, true
}

// strList decodes a list of strings; ok is false when it is absent or
// wrong. Errors point at the offending element of a literal list.
func (b *block) strList(attrs hcl.Attributes, name, example string) (list []string, attr *hcl.Attribute, ok bool) {
	attr = attrs[name]
	if attr == nil {
		return nil, nil, false
	}
	v, ok := b.value(attr)
	if !ok {
		return nil, attr, false
	}
	if t := v.Type(); !t.IsTupleType() && !t.IsListType() && !t.IsSetType() {
		b.errorf(attr.Expr.Range(), "Incorrect attribute value type",
			"Attribute %q in %s must be a list of strings, like %s, not %s.", name, b.what, example, friendly(t))
		return nil, attr, false
	}
	var elems []hcl.Range
	if tup, isTup := attr.Expr.(*hclsyntax.TupleConsExpr); isTup {
		for _, e := range tup.Exprs {
			elems = append(elems, e.Range())
		}
	}
	ok = true
	for i, it := 0, v.ElementIterator(); it.Next(); i++ {
		_, ev := it.Element()
		if ev.IsNull() || ev.Type() != cty.String {
			r := attr.Expr.Range()
			if i < len(elems) {
				r = elems[i]
			}
			b.errorf(r, "Incorrect attribute value type",
				"Element %d of %q in %s must be a string, like %s. Put the value in quotes.", i+1, name, b.what, example)
			ok = false
			continue
		}
		list = append(list, ev.AsString())
	}
	if !ok {
		return nil, attr, false
	}
	return list, attr, true
}

// suggest returns ` Did you mean "x"?` for the option closest to s, when one
// is close enough to be a likely typo, else "".
func suggest(s string, options []string) string {
	best, bestD := "", 3
	for _, o := range options {
		if d := editDistance(s, o); d < bestD {
			best, bestD = o, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" Did you mean %q?", best)
}

// editDistance is the Levenshtein distance between a and b, in runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
