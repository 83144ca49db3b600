package spec

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// A 1 MB value came back three times over (3 MB): in the message, in the
// snippet line and in the marks under it. Every message quotes at most 64
// bytes of a value (model.Quote), and a long source line is shown as a
// window around the range.
func TestHugeValuesAreNotEchoed(t *testing.T) {
	huge := strings.Repeat("v", 1<<20)
	for _, tc := range []struct{ name, src, want string }{
		{"label value", "network \"a\" {\n  labels = { env = \"" + huge + "\" }\n}\n",
			`Invalid label value; Value "` + huge[:64] + `"... (1048576 bytes) of label "env" in network "a" is not valid: it is 1048576 characters long, more than 63.`},
		{"label key", "network \"a\" {\n  labels = { \"" + huge + "\" = \"x\" }\n}\n", `Invalid label key; Label key "` + huge[:64] + `"... (1048576 bytes) in network "a"`},
		{"network name", "network \"" + huge + "\" {\n}\n", `Invalid network name; Network name "` + huge[:64] + `"... (1048576 bytes) is not a DNS label`},
		{"workload name", "workload \"" + huge + "\" {\n  network = \"p\"\n  node = \"h\"\n}\n", `Invalid workload name; Workload name "` + huge[:64] + `"... (1048576 bytes)`},
		{"workload network", "workload \"w\" {\n  network = \"" + huge + "\"\n  node = \"h\"\n}\n", `Invalid network name; network "` + huge[:64] + `"... (1048576 bytes) in workload "w"`},
		{"node", "workload \"w\" {\n  network = \"p\"\n  node = \"" + huge + "\"\n}\n", `Invalid node name; node "` + huge[:64] + `"... (1048576 bytes) in workload "w"`},
		{"isolation", "cluster {\n  isolation = \"" + huge + "\"\n}\n", `Invalid isolation mode; isolation "` + huge[:64] + `"... (1048576 bytes) is not one of`},
		{"node_release_after", "cluster {\n  node_release_after = \"" + huge + "\"\n}\n", `Invalid value; node_release_after "` + huge[:64] + `"... (1048576 bytes): want a duration`},
		{"cidr", "cluster {\n  cidr = \"" + huge + "\"\n}\n", `Invalid CIDR; cidr "` + huge[:64] + `"... (1048576 bytes) is not a CIDR`},
		{"ip", "network \"p\" {}\nworkload \"w\" {\n  network = \"p\"\n  node = \"h\"\n  ip = \"" + huge + "\"\n}\n", `Invalid IP address; ip "` + huge[:64] + `"... (1048576 bytes) is not an IP address`},
		{"mac", "network \"p\" {}\nworkload \"w\" {\n  network = \"p\"\n  node = \"h\"\n  mac = \"" + huge + "\"\n}\n", `Invalid MAC address; mac "` + huge[:64] + `"... (1048576 bytes) is not an Ethernet MAC address`},
	} {
		doc, diags := Parse("f.hcl", []byte(tc.src))
		var buf bytes.Buffer
		if err := WriteDiagnostics(&buf, doc.Files, diags); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		if !strings.Contains(out, tc.want) {
			t.Errorf("%s: want %q in:\n%.600s", tc.name, tc.want, out)
		}
		if len(out) > 2000 {
			t.Errorf("%s: %d bytes of diagnostics for a 1 MB value, want under 2000:\n%.600s...", tc.name, len(out), out)
		}
	}
}

// A long line is shown as a window around the range, with the marks under
// it, and says it is cut.
func TestSnippetOfLongLine(t *testing.T) {
	var before, after []string
	for i := range 30 {
		before = append(before, fmt.Sprintf("a%02d = \"x\"", i))
		after = append(after, fmt.Sprintf("b%02d = \"y\"", i))
	}
	src := fmt.Sprintf("network \"p\" {\n  labels = { %s, env = \"Bad Value\", %s }\n}\n",
		strings.Join(before, ", "), strings.Join(after, ", "))
	doc, diags := Parse("long.hcl", []byte(src))
	var buf bytes.Buffer
	if err := WriteDiagnostics(&buf, doc.Files, diags); err != nil {
		t.Fatal(err)
	}
	want := `long.hcl:2,350-361: Invalid label value; Value "Bad Value" of label "env" in network "p" is not valid: it contains ' ' at position 4; only letters, digits, '-', '_' and '.' are allowed.
2 | ...= "x", a29 = "x", env = "Bad Value", b00 = "y", b01 = "y", b02 = "y", b03 = "y", b04 = "y", b05 = "y...
  |                            ^^^^^^^^^^^
`
	if got := buf.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// Thousands of errors (a generated file of duplicates) render the first
// ones and say how many are left; finding them stays linear.
func TestManyDiagnostics(t *testing.T) {
	src := strings.Repeat("network \"dup\" {}\n", 20000)
	doc, diags := Parse("dups.hcl", []byte(src))
	if len(diags) != 19999 {
		t.Fatalf("got %d diagnostics, want 19999 duplicates", len(diags))
	}
	var buf bytes.Buffer
	if err := WriteDiagnostics(&buf, doc.Files, diags); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if n := strings.Count(out, "Duplicate network"); n != maxRendered {
		t.Errorf("rendered %d diagnostics, want the first %d", n, maxRendered)
	}
	if want := fmt.Sprintf("\n... and %d more errors not shown.\n", 19999-maxRendered); !strings.HasSuffix(out, want) {
		t.Errorf("output ends %q, want %q", out[max(len(out)-100, 0):], want)
	}
}
