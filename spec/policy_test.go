package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sdn-dev/sdn/policy"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// A realistic policy file (the deepest nesting the schema has: a selector's
// expression values inside a peer of a rule, and many policies) passes the
// source limits CheckSource applies before parsing, and decodes cleanly.
func TestPolicyFileWithinLimits(t *testing.T) {
	var b strings.Builder
	b.WriteString("network \"proj1\" {}\n")
	for i := range 2000 {
		fmt.Fprintf(&b, `policy "p%d" {
  network = "proj1"
  workloads {
    match_labels = { app = "web%d" }
    match_expression {
      key      = "tier"
      operator = "In"
      values   = ["frontend", "edge"]
    }
  }
  ingress {
    name = "clients"
    from {
      networks  { match_labels = { team = "payments" } }
      workloads {
        match_expression {
          key      = "role"
          operator = "NotIn"
          values   = ["db", "cache"]
        }
      }
    }
    from {
      cidr   = "198.51.100.0/24"
      except = ["198.51.100.128/25", "198.51.100.64/26"]
    }
    port {
      port     = 8000
      end_port = 8080
    }
    port { name = "http" }
  }
  egress {
    to { cidr = "0.0.0.0/0" }
    port {
      protocol = "udp"
      port     = 53
    }
  }
}
`, i, i)
	}
	src := []byte(b.String())
	if diags := CheckSource("big.hcl", src); diags.HasErrors() {
		t.Fatalf("CheckSource refuses a realistic policy file of %d bytes: %v", len(src), diags)
	}
	doc, diags := Parse("big.hcl", src)
	if diags.HasErrors() {
		t.Fatalf("diagnostics: %v", diags[0])
	}
	if len(doc.Policies) != 2000 {
		t.Fatalf("decoded %d policies, want 2000", len(doc.Policies))
	}
	if got := doc.ApplyRequest().Policies[1999].Ingress[0].Peers[0].Workloads.MatchExpressions[0].Values; len(got) != 2 {
		t.Errorf("deepest values = %v", got)
	}
}

// TestPolicyFirstLines pins where a few policy problems are reported: at
// the attribute at fault, as users and editors read them.
func TestPolicyFirstLines(t *testing.T) {
	for file, want := range map[string]string{
		"policy_selector.hcl": `policy_selector.hcl:4,22-32: Invalid label key; Label key "bad key!" in the workloads selector of policy "sel" is not valid: the name part contains ' ' at position 4; only letters, digits, '-', '_' and '.' are allowed.`,
		"policy_rules.hcl":    `policy_rules.hcl:5,14-20: Invalid action; action "alow" in ingress rule 1 of policy "rules" is not one of "allow" (the default), "deny" or "pass" (cluster-wide policies only). Did you mean "allow"?`,
		"dup_policy.hcl":      `dup_policy.hcl:12,8-13: Duplicate policy; A policy named "web" is already declared at dup_policy.hcl:1,8-13; policy names are unique within network "proj1", so rename or remove one.`,
		"named_ports.hcl":     `named_ports.hcl:4,26-35: Invalid named port; named port "http" in workload "w1": protocol "sctp" is not "tcp" or "udp"; write e.g. "udp/53".`,
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

// Problems policy.Check finds are reported once each, at the attribute
// they concern, and not again where the decoder already reported one.
func TestPolicyCheckPositions(t *testing.T) {
	src := `policy "p" {
  network = "proj1"
  isolate = ["sideways"]
  egress {
    to {
      cidr   = "10.0.0.0/8"
      except = ["10.1.0.0/16", "11.0.0.0/16"]
    }
  }
}
`
	_, diags := Parse("p.hcl", []byte(src))
	var got []string
	for _, d := range diags {
		got = append(got, fmt.Sprintf("%s %s", d.Subject, d.Summary))
	}
	want := []string{
		"p.hcl:3,13-25 Invalid policy", // isolate
		"p.hcl:7,16-46 Invalid policy", // except (the attribute; the list's elements have no range of their own)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("diagnostics at\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// The defaults docs/policy.md gives: priority 1000, isolate ingress (plus
// egress with egress rules) for a network's policy and nothing for a
// cluster-wide one, protocol tcp, action allow; an empty selector block is
// "everything", an absent one nil.
func TestPolicyDefaults(t *testing.T) {
	src := `policy "a" {
  network = "proj1"
}
policy "b" {
  network = "proj1"
  egress {
    port { port = 80 }
  }
}
policy "c" {
  workloads {}
  ingress {}
}
policy "d" {
  network = "proj1"
  isolate = []
  egress {}
}
`
	doc, diags := Parse("d.hcl", []byte(src))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	ps := doc.Policies
	for i, want := range [][]string{{"ingress"}, {"ingress", "egress"}, nil, {}} {
		if fmt.Sprint(ps[i].Isolate) != fmt.Sprint(want) {
			t.Errorf("policy %s isolates %v, want %v", ps[i].Name, ps[i].Isolate, want)
		}
		if ps[i].Priority != policy.DefaultPriority {
			t.Errorf("policy %s priority %d", ps[i].Name, ps[i].Priority)
		}
	}
	if pp := ps[1].Egress[0].Ports[0]; pp.Protocol != "tcp" || pp.Port != 80 {
		t.Errorf("port = %v, want tcp/80", pp)
	}
	if a := ps[1].Egress[0].Action; a != sdnv1.PolicyAction_POLICY_ACTION_ALLOW {
		t.Errorf("action = %v, want allow", a)
	}
	if ps[0].Workloads != nil || ps[2].Workloads == nil || !policy.Matches(ps[2].Workloads, map[string]string{"x": "y"}) {
		t.Errorf("absent selector %v, empty selector %v", ps[0].Workloads, ps[2].Workloads)
	}
	if ps[2].Network != "" || policy.Key(ps[2]) != "c" || policy.Key(ps[1]) != "proj1/b" {
		t.Errorf("keys %q %q", policy.Key(ps[2]), policy.Key(ps[1]))
	}
}
