package spec

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/sdn-dev/sdn/model"
)

// CheckLiterals refuses, in every attribute of body and of its blocks, any
// expression that is not a literal: values in these files are literals (a
// quoted string without interpolation, a number, true, false, null), lists
// and maps of them, and a number negated. Nothing is evaluated that could
// depend on anything but the text. Each problem points at the expression.
// sdnd's config file reader uses it too.
func CheckLiterals(body hcl.Body) hcl.Diagnostics {
	b, ok := body.(*hclsyntax.Body)
	if !ok {
		return nil
	}
	var diags hcl.Diagnostics
	for _, attr := range sortedAttrs(b) {
		diags = append(diags, checkLiteral(attr.Name, attr.Expr)...)
	}
	for _, blk := range b.Blocks {
		diags = append(diags, CheckLiterals(blk.Body)...)
	}
	return diags
}

// sortedAttrs returns a body's attributes in source order.
func sortedAttrs(b *hclsyntax.Body) []*hclsyntax.Attribute {
	out := make([]*hclsyntax.Attribute, 0, len(b.Attributes))
	for _, a := range b.Attributes {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SrcRange.Start.Byte < out[j].SrcRange.Start.Byte })
	return out
}

// checkLiteral checks one expression of attribute name.
func checkLiteral(name string, e hclsyntax.Expression) hcl.Diagnostics {
	switch e := e.(type) {
	case *hclsyntax.LiteralValueExpr:
		return nil
	case *hclsyntax.TemplateExpr:
		for _, p := range e.Parts {
			if lit, ok := p.(*hclsyntax.LiteralValueExpr); !ok || lit.Val.Type() != cty.String {
				return notLiteral(name, e, "a string template with interpolation")
			}
		}
		return nil
	case *hclsyntax.UnaryOpExpr:
		if lit, ok := e.Val.(*hclsyntax.LiteralValueExpr); ok && e.Op == hclsyntax.OpNegate && lit.Val.Type() == cty.Number {
			return nil
		}
		return notLiteral(name, e, "an operation")
	case *hclsyntax.TupleConsExpr:
		var diags hcl.Diagnostics
		for _, el := range e.Exprs {
			diags = append(diags, checkLiteral(name, el)...)
		}
		return diags
	case *hclsyntax.ObjectConsExpr:
		var diags hcl.Diagnostics
		for _, it := range e.Items {
			diags = append(diags, checkKey(name, it.KeyExpr)...)
			diags = append(diags, checkLiteral(name, it.ValueExpr)...)
		}
		return diags
	}
	return notLiteral(name, e, describe(e))
}

// checkKey allows a map key written as a bare name or a literal.
func checkKey(name string, e hclsyntax.Expression) hcl.Diagnostics {
	k, ok := e.(*hclsyntax.ObjectConsKeyExpr)
	if !ok {
		return checkLiteral(name, e)
	}
	if k.ForceNonLiteral {
		return notLiteral(name, k.Wrapped, "a key computed in parentheses")
	}
	if st, ok := k.Wrapped.(*hclsyntax.ScopeTraversalExpr); ok && len(st.Traversal) == 1 {
		return nil // a bare name: the key is the name itself
	}
	return checkLiteral(name, k.Wrapped)
}

// describe names what kind of expression e is, for a message.
func describe(e hclsyntax.Expression) string {
	switch e := e.(type) {
	case *hclsyntax.FunctionCallExpr:
		return "a call of the function " + model.Quote(e.Name)
	case *hclsyntax.ScopeTraversalExpr:
		if len(e.Traversal) == 1 {
			return fmt.Sprintf("the bare word %s (a variable reference; a string goes in quotes, e.g. %s)",
				model.Quote(e.Traversal.RootName()), model.Quote(e.Traversal.RootName()))
		}
		return "a reference to the variable " + model.Quote(traversalString(e.Traversal))
	case *hclsyntax.ParenthesesExpr:
		return "an expression in parentheses"
	case *hclsyntax.BinaryOpExpr, *hclsyntax.UnaryOpExpr:
		return "an operation"
	case *hclsyntax.ConditionalExpr:
		return "a conditional"
	case *hclsyntax.ForExpr:
		return "a for expression"
	case *hclsyntax.SplatExpr:
		return "a splat expression"
	case *hclsyntax.IndexExpr, *hclsyntax.RelativeTraversalExpr:
		return "an index or attribute access"
	case *hclsyntax.TemplateWrapExpr:
		return "a string template with interpolation"
	}
	return "an expression"
}

// traversalString renders a variable reference such as var.env or a[0].
func traversalString(t hcl.Traversal) string {
	var b strings.Builder
	for _, step := range t {
		switch step := step.(type) {
		case hcl.TraverseRoot:
			b.WriteString(step.Name)
		case hcl.TraverseAttr:
			b.WriteString("." + step.Name)
		default:
			b.WriteString("[...]")
		}
	}
	return b.String()
}

func notLiteral(name string, e hclsyntax.Expression, what string) hcl.Diagnostics {
	return hcl.Diagnostics{{
		Severity: hcl.DiagError,
		Summary:  "Not a literal value",
		Detail: fmt.Sprintf("The value of %q is %s, but values in these files are literals: a quoted string, a number, true, false or null, or a list [...] or map { ... } of them; write the value itself.",
			name, what),
		Subject: e.Range().Ptr(),
	}}
}
