package spec

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// hclDepth is the deepest nesting of hcl's own tokens in src: what its
// parser can recurse on.
func hclDepth(src []byte) int {
	toks, _ := hclsyntax.LexConfig(src, "x.hcl", hcl.InitialPos)
	depth, deepest := 0, 0
	for _, tok := range toks {
		switch tok.Type {
		case hclsyntax.TokenOBrace, hclsyntax.TokenOBrack, hclsyntax.TokenOParen,
			hclsyntax.TokenTemplateInterp, hclsyntax.TokenTemplateControl:
			depth++
			deepest = max(deepest, depth)
		case hclsyntax.TokenCBrace, hclsyntax.TokenCBrack, hclsyntax.TokenCParen, hclsyntax.TokenTemplateSeqEnd:
			depth = max(depth-1, 0)
		}
	}
	return deepest
}

// scanDepth is the deepest nesting CheckSource's scan saw, and whether it
// scanned the whole file.
func scanDepth(src []byte) (int, bool) {
	s := &scanner{src: src, filename: "x.hcl"}
	s.run()
	return s.maxDepth, !s.stopped
}

// The scan must see the nesting hcl's lexer sees: where it took code for a
// string, a file could hide deep nesting from it and still crash the
// parser. Strings, escapes, templates, heredocs and comments are where the
// two could part.
func TestScanDepthMatchesHCL(t *testing.T) {
	for _, src := range []string{
		`a = [[1], {b = (2)}]`,
		`a = "(((" # [[[`,
		`a = "\"((("`,
		`a = "\\" [[[ ]]]`,
		"a = \"x\\\n[[\"",
		`a = "${ ( }" ((((`,
		`a = "${ { } }" [[`,
		`a = "$${ [[ }" [`,
		`a = "%{ if x }((%{ endif }"`,
		`a = "${ "${ [ ] }" }"`,
		`a = "${ a ~} (( "`,
		"a = <<EOT\n(((\nEOT\nb = [[1]]",
		"a = <<-EOT\n  ((\n  EOT\n[",
		"a = <<EOT\n$EOT\n[[\nEOT\n(",
		"a = <<EOT\n${ [\nEOT\n] }\nEOT\n[[",
		"a = <<EOT\r\n((\r\nEOT\r\n[",
		"a = <<EÖT\n[[\nEÖT\n(",
		"a = <<EOT (\n[[\nEOT\n",
		"/* [[[ */ a = [1] // (((\n# {{{\n",
		"/* unterminated [[[",
		`a = "unterminated [[[`,
		"a = \"multi\nline [[ \" ((",
		`a = ["}", "]", ")"] [`,
		`}}} a = [[1]]`,
	} {
		want := hclDepth([]byte(src))
		got, whole := scanDepth([]byte(src))
		if whole && got != want {
			t.Errorf("%q: the scan saw depth %d, hcl's lexer %d", src, got, want)
		}
	}
}

// The same over random files made of the pieces where lexers go wrong.
func TestScanDepthMatchesHCLRandom(t *testing.T) {
	pieces := []string{"{", "}", "(", ")", "[", "]", `"`, `\`, "$", "${", "$${", "%{", "%%{", "#", "//", "/*", "*/",
		"\n", "\r\n", "<<EOT\n", "<<-EOT\n", "EOT\n", " EOT \n", "a", "x = ", " ", "~}", "Ö", "1", ","}
	r := rand.New(rand.NewPCG(11, 3))
	compared := 0
	for range 20000 {
		var b strings.Builder
		for range 1 + r.IntN(30) {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		src := []byte(b.String())
		want := hclDepth(src)
		got, whole := scanDepth(src)
		if !whole {
			continue
		}
		compared++
		if got != want {
			t.Fatalf("%q: the scan saw depth %d, hcl's lexer %d", src, got, want)
		}
	}
	if compared < 2000 {
		t.Errorf("only %d of 20000 random files were scanned whole", compared)
	}
}

// After a refused ${...} the scan follows hcl's lexer through the code in
// it, so the next problems it reports are real ones, not echoes of a string
// it lost track of.
func TestScanFollowsTemplates(t *testing.T) {
	src := "a = \"${upper(\"x\")}\"\nb = \"%{ if c }(${ \"}\" }%{ endif }\"\nc = 1 + 2\n"
	diags := CheckSource("t.hcl", []byte(src))
	var got []string
	for _, d := range diags {
		got = append(got, d.Subject.String()+": "+d.Summary)
	}
	want := []string{
		"t.hcl:1,6-8: Interpolation is not supported",
		"t.hcl:2,6-8: Template directive is not supported",
		"t.hcl:2,16-18: Interpolation is not supported",
		"t.hcl:2,24-26: Template directive is not supported",
		"t.hcl:3,7-8: Expressions are not supported",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
