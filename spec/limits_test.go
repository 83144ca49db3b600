package spec

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// firstLines renders diags one line each (DiagnosticLine).
func firstLines(t *testing.T, src string) []string {
	t.Helper()
	_, diags := Parse("f.hcl", []byte(src))
	var out []string
	for _, d := range diags {
		out = append(out, DiagnosticLine(d))
	}
	return out
}

// Values are literals (spec/doc.go): anything that would be evaluated is
// refused with a diagnostic at the expression, never computed.
func TestOnlyLiterals(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"operator", "cluster {\n  host_prefix = 20 + 3\n}\n",
			`f.hcl:2,20-21: Expressions are not supported; "+" is an operator, but values in these files are literals`},
		{"comparison", "cluster {\n  mtu = 1 >= 2\n}\n",
			`f.hcl:2,11-13: Expressions are not supported; ">=" is an operator`},
		{"conditional", "cluster {\n  host_prefix = true ? 23 : 24\n}\n",
			`f.hcl:2,22-23: Expressions are not supported; "?" is an operator`},
		{"negation twice", "cluster {\n  mtu = --1\n}\n",
			`f.hcl:2,9-10: Expressions are not supported; "-" is an operator`},
		{"not", "network \"a\" {\n  admin = !false\n}\n",
			`f.hcl:2,11-12: Expressions are not supported; "!" is an operator`},
		{"interpolation", "cluster {\n  cidr = \"10.${1}.0.0/16\"\n}\n",
			`f.hcl:2,14-16: Interpolation is not supported; Values in these files are literals: ${...} is not evaluated here, so write the value itself; write $${ for a literal ${.`},
		{"interpolation alone", "cluster {\n  cidr = \"${var.cidr}\"\n}\n",
			`f.hcl:2,11-13: Interpolation is not supported`},
		{"directive", "cluster {\n  isolation = \"%{ if true }flat%{ endif }\"\n}\n",
			`f.hcl:2,16-18: Template directive is not supported; Values in these files are literals: %{...} is not evaluated here, so write the value itself; write %%{ for a literal %{.`},
		{"interpolation in a heredoc", "cluster {\n  isolation = <<EOT\n${x}\nEOT\n}\n",
			`f.hcl:3,1-3: Interpolation is not supported`},
		{"function", "cluster {\n  cidr = cidrsubnet(\"10.0.0.0/8\", 6, 32)\n}\n",
			`f.hcl:2,10-41: Not a literal value; The value of "cidr" is a call of the function "cidrsubnet", but values in these files are literals`},
		{"variable", "cluster {\n  cidr = var.cidr\n}\n",
			`f.hcl:2,10-18: Not a literal value; The value of "cidr" is a reference to the variable "var.cidr"`},
		{"bare word", "cluster {\n  isolation = flat\n}\n",
			`f.hcl:2,15-19: Not a literal value; The value of "isolation" is the bare word "flat" (a variable reference; a string goes in quotes, e.g. "flat")`},
		{"parentheses", "cluster {\n  host_prefix = (23)\n}\n",
			`f.hcl:2,17-21: Not a literal value; The value of "host_prefix" is an expression in parentheses`},
		{"computed key", "network \"a\" {\n  labels = { (k) = \"v\" }\n}\n",
			`f.hcl:2,14-17: Not a literal value; The value of "labels" is a key computed in parentheses`},
		{"for", "network \"a\" {\n  labels = { for k in [\"a\"] : k => k }\n}\n",
			`f.hcl:2,12-39: Not a literal value; The value of "labels" is a for expression`},
		{"in a list", "network \"a\" {\n  labels = [\"a\", upper(\"b\")]\n}\n",
			`f.hcl:2,18-28: Not a literal value; The value of "labels" is a call of the function "upper"`},
	} {
		lines := firstLines(t, tc.src)
		if len(lines) == 0 || !strings.HasPrefix(lines[0], tc.want) {
			t.Errorf("%s: got %q\nwant a first line starting %q", tc.name, lines, tc.want)
		}
	}
}

// What looks like an expression but is literal decodes as before.
func TestLiteralsAccepted(t *testing.T) {
	src := "cluster {\n  host_prefix = 24 # a comment: ${x} + 1\n  mtu = 1400 // (((\n  /* ]]] ${y} */ isolation = \"flat\"\n}\n" +
		"network \"a\" {\n  labels = { \"app.kubernetes.io/name\" = \"x\", env: \"prod\", cost = \"a$${b}\" }\n}\n" +
		"network \"b\" {\n  labels = {\n    note = <<-EOT\n      v1\n    EOT\n  }\n}\n"
	doc, diags := Parse("ok.hcl", []byte(src))
	for _, d := range diags {
		if d.Summary != "Invalid label value" {
			t.Errorf("unexpected: %s", DiagnosticLine(d))
		}
	}
	if doc.Cluster.GetHostPrefix() != 24 || doc.Cluster.GetMtu() != 1400 {
		t.Errorf("cluster decoded as %v", doc.Cluster)
	}
	// "a$${b}" is the literal a${b}: refused as a label value, not as a template.
	if len(diags) != 2 || !strings.Contains(DiagnosticLine(diags[0]), `"a${b}"`) {
		t.Errorf("want the label values a${b} and v1\\n refused as label values; got %v", diags)
	}
	lines := firstLines(t, "cluster {\n  mtu = -1\n}\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "mtu -1 in the cluster block is out of range") {
		t.Errorf("mtu = -1: got %q, want out of range", lines)
	}
}

// Nesting past MaxDepth is refused before hcl parses the file.
func TestNestingDepth(t *testing.T) {
	nest := func(open, inner, close string, n int) string {
		return strings.Repeat(open, n) + inner + strings.Repeat(close, n)
	}
	for _, tc := range []struct{ name, src, want string }{
		{"parentheses", "cluster {\n  host_prefix = " + nest("(", "23", ")", 40) + "\n}\n",
			"f.hcl:2,48-49: Nesting too deep; Brackets nest more than 32 deep here"},
		{"maps", "network \"a\" {\n  labels = " + nest("{a=", `"b"`, "}", 40) + "\n}\n",
			"f.hcl:2,105-106: Nesting too deep"},
		{"lists", "network \"a\" {\n  labels = " + nest("[", "1", "]", 40) + "\n}\n",
			"f.hcl:2,43-44: Nesting too deep"},
		{"blocks", nest("a {\n", "", "}\n", 40),
			"f.hcl:33,3-4: Nesting too deep"},
	} {
		lines := firstLines(t, tc.src)
		if len(lines) != 1 || !strings.HasPrefix(lines[0], tc.want) {
			t.Errorf("%s: got %q, want one line starting %q", tc.name, lines, tc.want)
		}
	}
	// 32 deep is allowed: the list is refused as labels, not for its depth.
	lines := firstLines(t, "network \"a\" {\n  labels = "+nest("[", "1", "]", 31)+"\n}\n")
	if len(lines) != 1 || !strings.Contains(lines[0], `Attribute "labels" in network "a" must be a map of strings`) {
		t.Errorf("32 deep: got %q, want the type error", lines)
	}
}

// The files a hostile tester sent: 100,000 levels of (, { and [ in about
// 200 KB each crashed sdnctl (stack overflow, 1.1 GB). Each is decoded in a
// child process, so a crash fails this test instead of killing it, and the
// child's peak memory is measured: the refusal must not need more than a
// small multiple of the file.
func TestDeepFilesRefusedWithBoundedMemory(t *testing.T) {
	if path := os.Getenv("SPEC_TEST_DEEP_FILE"); path != "" {
		doc, diags := LoadPaths([]string{path})
		var buf bytes.Buffer
		_ = WriteDiagnostics(&buf, doc.Files, diags)
		fmt.Printf("%d diagnostics, %d bytes rendered\n%s\n", len(diags), buf.Len(), DiagnosticLine(diags[0]))
		return
	}
	const n = 100000
	dir := t.TempDir()
	for name, src := range map[string]string{
		"parens.hcl": "cluster {\n  host_prefix = " + strings.Repeat("(", n) + "23" + strings.Repeat(")", n) + "\n}\n",
		"maps.hcl":   "network \"a\" {\n  labels = " + strings.Repeat("{a=", n) + `"b"` + strings.Repeat("}", n) + "\n}\n",
		"lists.hcl":  "network \"a\" {\n  labels = " + strings.Repeat("[", n) + strings.Repeat("]", n) + "\n}\n",
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestDeepFilesRefusedWithBoundedMemory$", "-test.count=1")
		cmd.Env = append(os.Environ(), "SPEC_TEST_DEEP_FILE="+path)
		out, err := cmd.CombinedOutput()
		if err != nil {
			first, _, _ := strings.Cut(string(out), "\n")
			t.Errorf("%s: decoding it failed (%v): %s", name, err, first)
			continue
		}
		if want := path + ":2,"; !strings.Contains(string(out), want) || !strings.Contains(string(out), "Nesting too deep") {
			t.Errorf("%s: want a \"Nesting too deep\" error at %s...; got:\n%.500s", name, want, out)
		}
		if !strings.Contains(string(out), "1 diagnostics") {
			t.Errorf("%s: want exactly one diagnostic; got:\n%.500s", name, out)
		}
		rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10 // KiB on Linux
		if rss > 200<<20 {
			t.Errorf("%s: refusing a %d-byte file took %d MiB at peak, want under 200 MiB", name, len(src), rss>>20)
		}
		t.Logf("%s: %d bytes refused at %d MiB peak", name, len(src), rss>>20)
	}
}

// A name longer than any the schema has is refused without echoing it.
func TestNameTooLong(t *testing.T) {
	long := strings.Repeat("a", 1<<20)
	lines := firstLines(t, "cluster {\n  "+long+" = 1\n}\n")
	want := `f.hcl:2,3-1048579: Name too long; The name "` + long[:64] + `"... (1048576 bytes) is longer than 63 bytes`
	if len(lines) != 1 || !strings.HasPrefix(lines[0], want) {
		t.Errorf("got %.300q, want one line starting %q", lines, want)
	}
}

// A file of more than MaxTokens tokens is refused before hcl parses it:
// an 8 MiB list of numbers took hcl 3 GB.
func TestTooManyTokens(t *testing.T) {
	src := "network \"a\" {\n  labels = [" + strings.Repeat("1,", MaxTokens/2+10) + "]\n}\n"
	lines := firstLines(t, src)
	want := "f.hcl:2,1000005-1000006: File too complex; f.hcl holds more than 1000000 tokens (names, values, brackets, other symbols and line ends) by here, the most one file may hold; split it into several files."
	if len(lines) != 1 || lines[0] != want {
		t.Errorf("got %.300q, want %q", lines, want)
	}
	// A file of 30,000 workloads (about 30 tokens each) is under it.
	var b strings.Builder
	for i := range 30000 {
		fmt.Fprintf(&b, "workload \"w%d\" {\n  network = \"p\"\n  node    = \"h\"\n  labels  = { app = \"a\" }\n}\n", i)
	}
	if diags := CheckSource("w.hcl", []byte(b.String())); len(diags) > 0 {
		t.Errorf("30,000 workloads: %v", diags)
	}
}
