package spec

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"google.golang.org/protobuf/encoding/protojson"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// golden compares got with the golden file, or rewrites it with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./spec -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test ./spec -update and review the diff)\n--- got:\n%s\n--- want:\n%s", path, got, want)
	}
}

// requestJSON renders an ApplyRequest byte-stably: protojson varies its
// whitespace on purpose, so compact and re-indent it.
func requestJSON(t *testing.T, req *sdnv1.ApplyRequest) []byte {
	t.Helper()
	raw, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	var compact, out bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		t.Fatal(err)
	}
	if err := json.Indent(&out, compact.Bytes(), "", "  "); err != nil {
		t.Fatal(err)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

func render(t *testing.T, doc *Document, diags hcl.Diagnostics) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteDiagnostics(&buf, doc.Files, diags); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func hclFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.hcl"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files in %s: %v", dir, err)
	}
	return files
}

func TestGood(t *testing.T) {
	for _, path := range hclFiles(t, "testdata/good") {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			doc, diags := Parse(name, src)
			if len(diags) > 0 {
				t.Fatalf("unexpected diagnostics:\n%s", render(t, doc, diags))
			}
			golden(t, strings.TrimSuffix(path, ".hcl")+".golden", requestJSON(t, doc.ApplyRequest()))
		})
	}
}

func TestExamples(t *testing.T) {
	doc, diags := LoadPaths([]string{"../examples"})
	if len(diags) > 0 {
		t.Fatalf("examples do not decode cleanly:\n%s", render(t, doc, diags))
	}
	if len(doc.Files) != 4 {
		t.Errorf("decoded %d example files, want 4 (cluster, networks, services, static)", len(doc.Files))
	}
	golden(t, "testdata/examples.golden", requestJSON(t, doc.ApplyRequest()))
}

// position matches a rendered "file.hcl:line,col" location.
var position = regexp.MustCompile(`(?m)^[\w./-]+\.hcl:\d+,\d+-\d+(,\d+)?: `)

func TestBad(t *testing.T) {
	for _, path := range hclFiles(t, "testdata/bad") {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			doc, diags := Parse(name, src)
			if !diags.HasErrors() {
				t.Fatal("no errors for a bad file")
			}
			for _, d := range diags {
				if d.Subject == nil {
					t.Errorf("diagnostic without a source range: %s", DiagnosticLine(d))
				}
			}
			out := render(t, doc, diags)
			if !position.Match(out) {
				t.Errorf("output has no file:line,col position:\n%s", out)
			}
			golden(t, strings.TrimSuffix(path, ".hcl")+".golden", out)
		})
	}
}

// TestFirstLines pins the first line of a few diagnostics exactly: users and
// scripts grep for this form.
func TestFirstLines(t *testing.T) {
	for file, want := range map[string]string{
		"unknown_attr.hcl":  `unknown_attr.hcl:3,3-11: Unsupported argument; An argument named "isolaton" is not expected here. Did you mean "isolation"?`,
		"unknown_block.hcl": `unknown_block.hcl:1,1-8: Unsupported block type; Blocks of type "netwrok" are not expected here. Did you mean "network"?`,
		"host_bits.hcl":     `host_bits.hcl:2,10-25: CIDR has host bits set; cidr "10.128.0.1/14" has bits set after its /14 prefix; did you mean "10.128.0.0/14"?`,
		"dup_network.hcl":   `dup_network.hcl:5,9-16: Duplicate network; A network named "proj1" is already declared at dup_network.hcl:1,9-16; network names are unique, so rename or remove one.`,
	} {
		src, err := os.ReadFile(filepath.Join("testdata/bad", file))
		if err != nil {
			t.Fatal(err)
		}
		doc, diags := Parse(file, src)
		out := string(render(t, doc, diags))
		if first, _, _ := strings.Cut(out, "\n"); first != want {
			t.Errorf("%s: first line\n got: %s\nwant: %s", file, first, want)
		}
	}
}

// TestLoadPathsAcrossFiles checks that duplicates are found across files and
// that every file's errors are reported, not only the first's.
func TestLoadPathsAcrossFiles(t *testing.T) {
	doc, diags := LoadPaths([]string{"testdata/multi"})
	if doc == nil || len(doc.Files) != 3 {
		t.Fatalf("want a document with 3 files, got %+v", doc)
	}
	out := render(t, doc, diags)
	golden(t, "testdata/multi.golden", out)
	for _, want := range []string{
		"testdata/multi/b.hcl:1,1-8: Duplicate cluster block",
		"testdata/multi/b.hcl:5,9-16: Duplicate network",
		"testdata/multi/c.hcl:1,10-15: Duplicate workload",
		"testdata/multi/c.hcl:7,3-9: Unsupported argument",
	} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	// The first of each duplicate is kept.
	if got := doc.Cluster.GetOrigin().GetFile(); got != "testdata/multi/a.hcl" {
		t.Errorf("cluster from %s, want a.hcl", got)
	}
	if len(doc.Networks) != 2 {
		t.Errorf("got %d networks, want 2 (the duplicate dropped)", len(doc.Networks))
	}
}

func TestLoadPathsErrors(t *testing.T) {
	empty := t.TempDir()
	doc, diags := LoadPaths([]string{"testdata/nonexistent.hcl", empty})
	if doc == nil {
		t.Fatal("nil document")
	}
	out := string(render(t, doc, diags))
	for _, want := range []string{"Cannot read file; stat testdata/nonexistent.hcl: no such file or directory.", "No HCL files; Directory " + empty + " holds no *.hcl files."} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if _, diags := LoadPaths(nil); !diags.HasErrors() {
		t.Error("no error for no paths")
	}
}

// A file named twice, directly and through its directory, is decoded once.
func TestLoadPathsDedup(t *testing.T) {
	doc, diags := LoadPaths([]string{"../examples/networks.hcl", "../examples", "../examples/./networks.hcl"})
	if len(diags) > 0 {
		t.Fatalf("unexpected diagnostics:\n%s", render(t, doc, diags))
	}
	if len(doc.Files) != 4 || len(doc.Networks) != 3 {
		t.Errorf("got %d files and %d networks, want 4 and 3", len(doc.Files), len(doc.Networks))
	}
}

// A syntax error in one file does not hide another file's errors.
func TestLoadPathsAllFiles(t *testing.T) {
	dir := t.TempDir()
	for name, src := range map[string]string{
		"a.hcl": "network \"p\" {\n  labels = {\n}\n",
		"b.hcl": "cluster {\n  isolation = \"none\"\n}\n",
		"c.txt": "not hcl, not read",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	doc, diags := LoadPaths([]string{dir})
	out := string(render(t, doc, diags))
	a, b := filepath.Join(dir, "a.hcl")+":", filepath.Join(dir, "b.hcl")+":2,15-21: Invalid isolation mode"
	if !strings.Contains(out, a) || !strings.Contains(out, b) || strings.Index(out, a) > strings.Index(out, b) {
		t.Errorf("want errors from a.hcl, then from b.hcl; got:\n%s", out)
	}
	if len(doc.Files) != 2 || doc.Cluster == nil {
		t.Errorf("got %d files and cluster %v; want 2 files (c.txt skipped) and b.hcl's cluster", len(doc.Files), doc.Cluster)
	}
}
