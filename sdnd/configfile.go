package main

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/agext/levenshtein"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// applyConfigFile sets, from an HCL file of attributes named like the flags
// (data-dir = "/x", or data_dir), every flag the command line did not give.
// Bool flags take true or false; listen and servers take a string (commas
// allowed) or a list of strings; the rest a string. Errors carry the file
// position: `sdnd.hcl:3,1-9: Unknown setting "datadir"; Did you mean "data-dir"?`.
func applyConfigFile(fs *flag.FlagSet, filename string, src []byte, given map[string]bool) error {
	f, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return diagsError(diags)
	}
	attrs, diags := f.Body.JustAttributes()
	if diags.HasErrors() {
		return diagsError(diags)
	}
	var names []string
	fs.VisitAll(func(fl *flag.Flag) {
		if fl.Name != "config" {
			names = append(names, fl.Name)
		}
	})
	seen := map[string]*hcl.Attribute{}
	// In source order, so errors come in the order a reader meets them.
	ordered := make([]*hcl.Attribute, 0, len(attrs))
	for _, a := range attrs {
		ordered = append(ordered, a)
	}
	sort.Slice(ordered, func(i, j int) bool { return ordered[i].Range.Start.Byte < ordered[j].Range.Start.Byte })
	for _, a := range ordered {
		name := strings.ReplaceAll(a.Name, "_", "-")
		fl := fs.Lookup(name)
		if fl == nil || name == "config" {
			d := &hcl.Diagnostic{Severity: hcl.DiagError, Summary: fmt.Sprintf("Unknown setting %q", a.Name), Subject: a.NameRange.Ptr()}
			if s := suggest(name, names); s != "" {
				d.Detail = fmt.Sprintf("Did you mean %q?", s)
			} else {
				d.Detail = "Settings are named like sdnd's flags; `sdnd --help` lists them."
			}
			diags = append(diags, d)
			continue
		}
		if prev := seen[name]; prev != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: fmt.Sprintf("Setting %q given twice", name),
				Detail: fmt.Sprintf("Also set at %s.", prev.NameRange), Subject: a.NameRange.Ptr()})
			continue
		}
		seen[name] = a
		vals, d := attrValues(a, fl)
		if d != nil {
			diags = append(diags, d)
			continue
		}
		if given[name] {
			continue // the command line wins
		}
		for _, v := range vals {
			if err := fs.Set(name, v); err != nil {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: fmt.Sprintf("Invalid value for %q", a.Name),
					Detail: err.Error(), Subject: a.Expr.Range().Ptr()})
			}
		}
	}
	if diags.HasErrors() {
		return diagsError(diags)
	}
	return nil
}

// attrValues evaluates an attribute into the strings fs.Set takes.
func attrValues(a *hcl.Attribute, fl *flag.Flag) ([]string, *hcl.Diagnostic) {
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() {
		return nil, diags[0]
	}
	wrong := func(want string) *hcl.Diagnostic {
		return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: fmt.Sprintf("Invalid value for %q", a.Name),
			Detail: fmt.Sprintf("Want %s, got %s.", want, v.Type().FriendlyName()), Subject: a.Expr.Range().Ptr()}
	}
	if v.IsNull() || !v.IsKnown() {
		return nil, wrong("a value")
	}
	isBool := false
	if bf, ok := fl.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
		isBool = true
	}
	_, isList := fl.Value.(*listFlag)
	switch {
	case isBool:
		if v.Type() != cty.Bool {
			return nil, wrong("true or false")
		}
		return []string{fmt.Sprint(v.True())}, nil
	case isList && (v.Type().IsListType() || v.Type().IsTupleType()):
		var out []string
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			if e.IsNull() || e.Type() != cty.String {
				return nil, wrong("a list of strings")
			}
			out = append(out, e.AsString())
		}
		if len(out) == 0 {
			return nil, wrong("at least one address")
		}
		return out, nil
	case v.Type() == cty.String:
		return []string{v.AsString()}, nil
	case v.Type() == cty.Number && !isList:
		return []string{v.AsBigFloat().Text('f', -1)}, nil
	}
	if isList {
		return nil, wrong("a string or a list of strings")
	}
	return nil, wrong("a string")
}

// diagsError renders diagnostics one per line: "file:line,col-col: summary; detail".
func diagsError(diags hcl.Diagnostics) error {
	var lines []string
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			lines = append(lines, d.Error())
		}
	}
	return errors.New(strings.Join(lines, "\n"))
}

// suggest returns the name closest to s (edit distance at most 3), or "".
func suggest(s string, names []string) string {
	best, bestD := "", 4
	for _, n := range slices.Sorted(slices.Values(names)) {
		if d := levenshtein.Distance(s, n, nil); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}
