package spec

// FuzzParse feeds the HCL decoder arbitrary bytes. `make fuzz` runs it for
// long, `make test` briefly; the corpus is under testdata/fuzz/FuzzParse.

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/model"
	"github.com/sdn-dev/sdn/policy"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// fuzzFile is the name the fuzzed source is parsed under.
const fuzzFile = "fuzz.hcl"

// FuzzParse checks, for any input: Parse never panics; every diagnostic
// points inside the source it was given; rendering the diagnostics never
// panics. For an input that decodes without errors: decoding it again gives
// the same request, every object obeys the model's rules the servers apply,
// and the request written back out as HCL decodes, again without errors,
// to the same request.
func FuzzParse(f *testing.F) {
	var seeds []string
	for _, pattern := range []string{"../examples/*.hcl", "testdata/good/*.hcl", "testdata/bad/*.hcl", "testdata/multi/*.hcl"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, m...)
	}
	if len(seeds) == 0 {
		f.Fatal("no seed files")
	}
	for _, path := range seeds {
		src, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		doc, diags := Parse(fuzzFile, src)
		if doc == nil {
			t.Fatal("Parse returned no document")
		}
		for _, d := range diags {
			checkDiagnostic(t, src, d)
		}
		var out bytes.Buffer
		if err := WriteDiagnostics(&out, doc.Files, diags); err != nil {
			t.Fatal(err)
		}
		if diags.HasErrors() {
			return
		}
		req := doc.ApplyRequest()
		again, diags2 := Parse(fuzzFile, src)
		if !proto.Equal(req, again.ApplyRequest()) || len(diags2) != len(diags) {
			t.Fatalf("decoding the same source twice differs:\n%v\n%v", req, again.ApplyRequest())
		}
		if err := checkModelRules(req); err != nil {
			t.Fatalf("decoded without errors, but %v\nrequest: %v", err, req)
		}
		rewritten := writeHCL(req)
		doc2, diags3 := Parse("rewritten.hcl", rewritten)
		if diags3.HasErrors() {
			var b bytes.Buffer
			WriteDiagnostics(&b, doc2.Files, diags3)
			t.Fatalf("the decoded request written back as HCL does not decode:\n%s\n%s", rewritten, b.String())
		}
		if a, b := withoutSource(req), withoutSource(doc2.ApplyRequest()); !proto.Equal(a, b) {
			t.Fatalf("the decoded request written back as HCL decodes differently:\n%v\n%v\nrewritten:\n%s", a, b, rewritten)
		}
	})
}

// checkDiagnostic fails t unless d's ranges lie inside src, in order.
func checkDiagnostic(t *testing.T, src []byte, d *hcl.Diagnostic) {
	t.Helper()
	if d.Summary == "" {
		t.Errorf("diagnostic without a summary: %#v", d)
	}
	line := DiagnosticLine(d)
	for name, r := range map[string]*hcl.Range{"subject": d.Subject, "context": d.Context} {
		if r == nil {
			continue
		}
		if err := checkRange(src, *r); err != nil {
			t.Errorf("%s of %q: %v", name, line, err)
		}
	}
}

// checkRange says what is wrong with r as a range of fuzzFile's src.
//
// hcl counts columns in grapheme clusters, so a column is at least a byte.
// On invalid UTF-8 (which hcl reports as such) its grapheme scanner may run
// a range past a newline, so there only the byte offsets and the order are
// checked (testdata/fuzz/FuzzParse/5a395e6a07cbe099, f72e98add8af5395).
func checkRange(src []byte, r hcl.Range) error {
	if r.Filename != fuzzFile {
		return fmt.Errorf("range %s names another file", r)
	}
	lines := bytes.Split(src, []byte("\n"))
	valid := utf8.Valid(src)
	for _, p := range []hcl.Pos{r.Start, r.End} {
		if p.Line < 1 || p.Line > len(lines) || p.Column < 1 {
			return fmt.Errorf("position %d,%d is outside the source's %d lines", p.Line, p.Column, len(lines))
		}
		if p.Byte < 0 || p.Byte > len(src) {
			return fmt.Errorf("position %d,%d has byte offset %d, outside the %d-byte source", p.Line, p.Column, p.Byte, len(src))
		}
		if !valid {
			continue
		}
		if max := len(lines[p.Line-1]) + 1; p.Column > max {
			return fmt.Errorf("position %d,%d is past the end of its line (column %d)", p.Line, p.Column, max)
		}
		if line := bytes.Count(src[:p.Byte], []byte("\n")) + 1; line != p.Line {
			return fmt.Errorf("position %d,%d has byte offset %d, which is on line %d", p.Line, p.Column, p.Byte, line)
		}
	}
	if r.End.Line < r.Start.Line || (r.End.Line == r.Start.Line && r.End.Column < r.Start.Column) || r.End.Byte < r.Start.Byte {
		return fmt.Errorf("range %s (bytes %d-%d) ends before it starts", r, r.Start.Byte, r.End.Byte)
	}
	return nil
}

// checkModelRules applies the model's rules, which the servers apply too,
// to a request the decoder accepted.
func checkModelRules(req *sdnv1.ApplyRequest) error {
	if cs := req.Cluster; cs != nil {
		for attr, s := range map[string]string{"cidr": cs.Cidr, "service_cidr": cs.ServiceCidr} {
			if _, err := model.ParseIPv4Prefix(attr, s); err != nil {
				return err
			}
		}
		if model.IsolationName(cs.Isolation) == "" {
			return fmt.Errorf("isolation %v has no name", cs.Isolation)
		}
		if cs.HostPrefix > 30 || cs.VxlanPort == 0 || cs.VxlanPort > 65535 || (cs.Mtu != 0 && (cs.Mtu < 576 || cs.Mtu > 9000)) {
			return fmt.Errorf("cluster settings out of range: %v", cs)
		}
	}
	for _, n := range req.Networks {
		if err := model.ValidateName(n.Name); err != nil {
			return fmt.Errorf("network %q: %v", n.Name, err)
		}
		if err := checkLabels(n.Labels); err != nil {
			return fmt.Errorf("network %q: %v", n.Name, err)
		}
	}
	for _, w := range req.Workloads {
		for _, err := range []error{model.ValidateName(w.Name), model.ValidateName(w.Network), model.ValidateNodeName(w.Node), checkLabels(w.Labels)} {
			if err != nil {
				return fmt.Errorf("workload %q: %v", w.Name, err)
			}
		}
		if w.Ip != "" {
			if _, err := model.ParseIPv4("ip", w.Ip); err != nil {
				return err
			}
		}
		if w.Mac != "" {
			if m, err := model.ParseMAC("mac", w.Mac); err != nil || m != w.Mac {
				return fmt.Errorf("workload %q: mac %q is not canonical (%v)", w.Name, w.Mac, err)
			}
		}
		if err := policy.CheckNamedPorts(w.NamedPorts); err != nil {
			return fmt.Errorf("workload %q: %v", w.Name, err)
		}
	}
	for _, p := range req.Policies {
		if ps := policy.Check(p); len(ps) > 0 {
			return fmt.Errorf("policy %q: %s: %s", p.Name, ps[0].Field, ps[0].Message)
		}
	}
	return checkServiceRules(req)
}

func checkLabels(labels map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if err := model.ValidateLabelKey(k); err != nil {
			return fmt.Errorf("label key %q: %v", k, err)
		}
		if err := model.ValidateLabelValue(labels[k]); err != nil {
			return fmt.Errorf("label %s=%q: %v", k, labels[k], err)
		}
	}
	return nil
}

// writeHCL renders a request as an HCL file, every attribute spelled out.
// The values it writes passed the model's rules (checkModelRules), so they
// need no escapes beyond quotes.
func writeHCL(req *sdnv1.ApplyRequest) []byte {
	var b bytes.Buffer
	attr := func(name string, v any) {
		if s, ok := v.(string); ok {
			v = hclString(s)
		}
		fmt.Fprintf(&b, "  %s = %v\n", name, v)
	}
	if cs := req.Cluster; cs != nil {
		b.WriteString("cluster {\n")
		attr("cidr", cs.Cidr)
		attr("host_prefix", cs.HostPrefix)
		attr("service_cidr", cs.ServiceCidr)
		attr("vxlan_port", cs.VxlanPort)
		attr("isolation", model.IsolationName(cs.Isolation))
		attr("mtu", cs.Mtu)
		if cs.NodeReleaseAfterSeconds != 0 {
			attr("node_release_after", model.FormatNodeReleaseAfter(cs.NodeReleaseAfterSeconds))
		}
		attr("host_traffic", map[bool]string{false: "allow", true: "policy"}[cs.HostTrafficByPolicy])
		if cs.DnsDomain != "" {
			attr("dns_domain", cs.DnsDomain)
		}
		if cs.NodePortMin != 0 {
			attr("node_port_range", fmt.Sprintf("%d-%d", cs.NodePortMin, cs.NodePortMax))
		}
		b.WriteString("}\n")
	}
	for _, n := range req.Networks {
		fmt.Fprintf(&b, "network %s {\n", hclString(n.Name))
		attr("admin", n.Admin)
		attr("snat", !n.NoSnat)
		writeLabels(&b, n.Labels)
		b.WriteString("}\n")
	}
	for _, w := range req.Workloads {
		fmt.Fprintf(&b, "workload %s {\n", hclString(w.Name))
		attr("network", w.Network)
		attr("node", w.Node)
		if w.Ip != "" {
			attr("ip", w.Ip)
		}
		if w.Mac != "" {
			attr("mac", w.Mac)
		}
		writeLabels(&b, w.Labels)
		writeNamedPorts(&b, w.NamedPorts)
		b.WriteString("}\n")
	}
	for _, p := range req.Policies {
		writePolicy(&b, p)
	}
	for _, s := range req.Services {
		writeService(&b, s)
	}
	return b.Bytes()
}

func writeLabels(b *bytes.Buffer, labels map[string]string) {
	if labels == nil {
		return
	}
	b.WriteString("  labels = {\n")
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		fmt.Fprintf(b, "    %s = %s\n", hclString(k), hclString(labels[k]))
	}
	b.WriteString("  }\n")
}

// hclString quotes s as an HCL string literal, template sequences escaped.
func hclString(s string) string {
	q := strconv.Quote(s)
	q = strings.ReplaceAll(q, "${", "$${")
	return strings.ReplaceAll(q, "%{", "%%{")
}

// withoutSource is a copy of req without what depends on where the text
// was: origins and source ranges.
func withoutSource(req *sdnv1.ApplyRequest) *sdnv1.ApplyRequest {
	req = proto.Clone(req).(*sdnv1.ApplyRequest)
	if cs := req.Cluster; cs != nil {
		cs.Origin, cs.Ranges = nil, nil
	}
	for _, n := range req.Networks {
		n.Origin, n.Ranges = nil, nil
	}
	for _, w := range req.Workloads {
		w.Origin, w.Ranges = nil, nil
	}
	for _, p := range req.Policies {
		p.Origin, p.Ranges = nil, nil
		for _, r := range append(slices.Clone(p.Ingress), p.Egress...) {
			r.Ranges = nil
		}
	}
	for _, s := range req.Services {
		s.Origin, s.Ranges = nil, nil
	}
	return req
}

// TestWriteHCLRoundTrip checks FuzzParse's own writer on the examples and
// the good test files, so a fuzz failure is the decoder's, not the writer's.
func TestWriteHCLRoundTrip(t *testing.T) {
	files := append(hclFiles(t, "../examples"), hclFiles(t, "testdata/good")...)
	for _, path := range files {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		doc, diags := Parse(path, src)
		if diags.HasErrors() {
			t.Fatalf("%s: %v", path, diags)
		}
		req := doc.ApplyRequest()
		out := writeHCL(req)
		doc2, diags := Parse("rewritten.hcl", out)
		if diags.HasErrors() {
			t.Fatalf("%s: %v\n%s", path, diags, out)
		}
		if a, b := withoutSource(req), withoutSource(doc2.ApplyRequest()); !proto.Equal(a, b) {
			t.Fatalf("%s: round trip differs:\n%v\n%v\n%s", path, a, b, out)
		}
	}
}
