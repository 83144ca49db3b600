package spec

import (
	"bytes"
	"go/parser"
	"go/token"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"google.golang.org/protobuf/proto"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// A server violation carries the SourceRange the request had; rendered, it
// points at the same text as a local error would.
func TestViolationDiagnosticsRoundTrip(t *testing.T) {
	src := []byte("network \"proj1\" {\n}\n\nworkload \"db1\" {\n  network = \"proj1\"\n  node    = \"host1\"\n  ip      = \"10.128.9.10\"\n}\n")
	doc, diags := Parse("static.hcl", src)
	if len(diags) > 0 {
		t.Fatalf("unexpected diagnostics: %v", diags)
	}
	w := doc.Workloads[0]
	sr := w.Ranges["ip"]
	if want := (&sdnv1.SourceRange{File: "static.hcl", StartLine: 7, StartColumn: 13, EndLine: 7, EndColumn: 26}); !proto.Equal(sr, want) {
		t.Fatalf("ranges[ip] = %v, want %v", sr, want)
	}

	// What the server sends back for it, plus one with no range.
	vs := []*sdnv1.Violation{
		{Kind: "workload", Name: "proj1/db1", Field: "ip", Message: "ip 10.128.9.10 is not in node host1's subnet 10.128.0.0/23", Range: sr},
		{Kind: "network", Name: "proj1", Message: "network proj1 is in use", Range: doc.Networks[0].Ranges[""]},
		{Kind: "cluster", Message: "cluster settings cannot change while nodes are registered"},
	}
	vd := ViolationDiagnostics(vs)
	if len(vd) != 3 || !vd.HasErrors() {
		t.Fatalf("got %d diagnostics, want 3 errors", len(vd))
	}
	if got := HCLRange(SourceRange(*vd[0].Subject)); got != *vd[0].Subject {
		t.Errorf("SourceRange/HCLRange round trip: %v != %v", got, *vd[0].Subject)
	}
	var buf bytes.Buffer
	if err := WriteDiagnostics(&buf, doc.Files, vd); err != nil {
		t.Fatal(err)
	}
	want := `static.hcl:7,13-26: Invalid ip in workload "proj1/db1"; ip 10.128.9.10 is not in node host1's subnet 10.128.0.0/23
7 |   ip      = "10.128.9.10"
  |             ^^^^^^^^^^^^^

static.hcl:1,1-16: Invalid network "proj1"; network proj1 is in use
1 | network "proj1" {
  | ^^^^^^^^^^^^^^^

Invalid cluster; cluster settings cannot change while nodes are registered
`
	if got := buf.String(); got != want {
		t.Errorf("rendered:\n%s\nwant:\n%s", got, want)
	}

	// Without the files (e.g. they changed since), the first line still says where.
	buf.Reset()
	if err := WriteDiagnostics(&buf, nil, vd[:1]); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); !strings.HasPrefix(got, "static.hcl:7,13-26: Invalid ip") || strings.Count(got, "\n") != 1 {
		t.Errorf("rendered without files: %q", got)
	}
}

func TestWriteDiagnosticsSnippets(t *testing.T) {
	src := "network \"p\" {\n\tlabels = [\n\t\t\"a\",\n\t\t\"b\",\n\t\t\"c\",\n\t\t\"d\",\n\t]\n}\n"
	doc, diags := Parse("tabs.hcl", []byte(src))
	var buf bytes.Buffer
	if err := WriteDiagnostics(&buf, doc.Files, diags); err != nil {
		t.Fatal(err)
	}
	// A long multi-line range shows its first lines and its last; tabs are
	// kept in the marker line so the carets line up.
	want := "tabs.hcl:2,11-7,3: Incorrect attribute value type; Attribute \"labels\" in network \"p\" must be a map of strings, like { env = \"prod\" }, not a list.\n" +
		"2 | \tlabels = [\n" +
		"  | \t         ^\n" +
		"3 | \t\t\"a\",\n" +
		"  | \t\t^^^^\n" +
		"4 | \t\t\"b\",\n" +
		"  | \t\t^^^^\n" +
		"  | ...\n" +
		"7 | \t]\n" +
		"  | \t^\n"
	if got := buf.String(); got != want {
		t.Errorf("rendered:\n%s\nwant:\n%s", got, want)
	}
}

func TestDiagnosticLine(t *testing.T) {
	r := hcl.Range{Filename: "a.hcl", Start: hcl.Pos{Line: 12, Column: 3}, End: hcl.Pos{Line: 12, Column: 9}}
	for _, tc := range []struct {
		d    *hcl.Diagnostic
		want string
	}{
		{&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "S", Detail: "D.", Subject: &r}, "a.hcl:12,3-9: S; D."},
		{&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "S", Subject: &r}, "a.hcl:12,3-9: S"},
		{&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "S", Detail: "D."}, "S; D."},
		{&hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "S", Detail: "D.", Subject: &r}, "a.hcl:12,3-9: Warning: S; D."},
	} {
		if got := DiagnosticLine(tc.d); got != tc.want {
			t.Errorf("DiagnosticLine = %q, want %q", got, tc.want)
		}
	}
}

// Ranges rebuilt from a SourceRange get their byte offsets back from the file.
func TestFileRangeBytes(t *testing.T) {
	src := []byte("# ü\nnetwork \"p\" {\n  admin = true\n}\nnetwork \"q\" { admin = true }\n")
	doc, diags := Parse("b.hcl", src)
	if len(diags) != 1 {
		t.Fatalf("got %d diagnostics, want 1 (two admins)", len(diags))
	}
	r := diags[0].Subject
	if got := string(r.SliceBytes(src)); got != "true" {
		t.Errorf("subject slices to %q, want %q", got, "true")
	}
	if doc.Networks[0].Ranges["admin"].StartLine != 3 {
		t.Errorf("ranges[admin] = %v", doc.Networks[0].Ranges["admin"])
	}
}

// Every package says what it is (CONTRIBUTING.md, Shape).
func TestPackageComment(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "doc.go", nil, parser.PackageClauseOnly|parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	if f.Doc == nil || !strings.HasPrefix(f.Doc.Text(), "Package spec ") {
		t.Error(`doc.go has no package comment starting "Package spec "`)
	}
}
