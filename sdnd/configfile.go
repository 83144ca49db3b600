package main

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/agext/levenshtein"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/sdn-dev/sdn/model"
	"github.com/sdn-dev/sdn/spec"
)

// applyConfigFile sets, from an HCL file of attributes named like the flags
// (data-dir = "/x", or data_dir), every flag the command line did not give.
// Bool flags take true or false; listen and servers take a string (commas
// allowed) or a list of strings; the rest a string. Errors carry the file
// position: `sdnd.hcl:3,1-9: Unknown setting "datadir"; Did you mean "data-dir"?`.
func applyConfigFile(fs *flag.FlagSet, filename string, src []byte, given map[string]bool) error {
	// Checked as spec files are (size, nesting, literal values only), so a
	// hostile file is refused before hcl's parser can overflow its stack.
	if diags := spec.CheckSource(filename, src); diags.HasErrors() {
		return diagsError(diags)
	}
	f, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return diagsError(diags)
	}
	if diags := spec.CheckLiterals(f.Body); diags.HasErrors() {
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
					Detail: fmt.Sprintf("%s: %v.", model.Quote(v), err), Subject: a.Expr.Range().Ptr()})
			}
		}
	}
	if diags.HasErrors() {
		return diagsError(diags)
	}
	return nil
}

// attrValues evaluates an attribute into the strings fs.Set takes, after
// checking its type against the flag's: true or false for a bool flag, a
// whole number for a count, a quoted string for a duration or any other
// setting, and a string or a list of strings for listen, servers, peers and
// join. A number is not a path: data_dir = 5 is refused.
func attrValues(a *hcl.Attribute, fl *flag.Flag) ([]string, *hcl.Diagnostic) {
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() {
		return nil, diags[0]
	}
	got := func() string {
		switch {
		case v.IsNull():
			return "null"
		case v.Type() == cty.Number && !v.AsBigFloat().IsInt():
			return v.AsBigFloat().Text('g', 10)
		case v.Type() == cty.String && isDuration(fl):
			return model.Quote(v.AsString())
		}
		return v.Type().FriendlyName()
	}
	wrong := func(want string) *hcl.Diagnostic {
		return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: fmt.Sprintf("Invalid value for %q", a.Name),
			Detail: fmt.Sprintf("Want %s, got %s.", want, got()), Subject: a.Expr.Range().Ptr()}
	}
	if v.IsNull() || !v.IsKnown() {
		return nil, wrong("a value")
	}
	_, isList := fl.Value.(*listFlag)
	switch {
	case isList:
		return listValues(v, wrong)
	case isBool(fl):
		if v.Type() != cty.Bool {
			return nil, wrong("true or false")
		}
		return []string{fmt.Sprint(v.True())}, nil
	case isInt(fl):
		if v.Type() != cty.Number || !v.AsBigFloat().IsInt() {
			return nil, wrong(fmt.Sprintf("a whole number without quotes, e.g. %s = 3", a.Name))
		}
		return []string{v.AsBigFloat().Text('f', 0)}, nil
	case isDuration(fl):
		if v.Type() != cty.String {
			return nil, wrong(fmt.Sprintf("a duration in quotes, e.g. %s = \"15s\"", a.Name))
		}
		if _, err := time.ParseDuration(v.AsString()); err != nil {
			return nil, wrong(fmt.Sprintf("a duration in quotes, e.g. %s = \"15s\"", a.Name))
		}
		return []string{v.AsString()}, nil
	}
	if v.Type() != cty.String {
		ex := fl.DefValue
		if ex == "" {
			ex = "..."
		}
		return nil, wrong(fmt.Sprintf("a string in quotes, e.g. %s = %q", a.Name, ex))
	}
	return []string{v.AsString()}, nil
}

// listValues takes a string (commas allowed) or a list of strings.
func listValues(v cty.Value, wrong func(string) *hcl.Diagnostic) ([]string, *hcl.Diagnostic) {
	switch {
	case v.Type() == cty.String:
		return []string{v.AsString()}, nil
	case v.Type().IsListType() || v.Type().IsTupleType():
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
	}
	return nil, wrong("a string or a list of strings")
}

// The kind of value a flag holds, from the standard flag values' Get.
func isBool(fl *flag.Flag) bool {
	bf, ok := fl.Value.(interface{ IsBoolFlag() bool })
	return ok && bf.IsBoolFlag()
}

func isInt(fl *flag.Flag) bool {
	g, ok := fl.Value.(flag.Getter)
	if !ok {
		return false
	}
	switch g.Get().(type) {
	case int, int64, uint, uint64:
		return true
	}
	return false
}

func isDuration(fl *flag.Flag) bool {
	g, ok := fl.Value.(flag.Getter)
	if !ok {
		return false
	}
	_, is := g.Get().(time.Duration)
	return is
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
