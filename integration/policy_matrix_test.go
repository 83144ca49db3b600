package integration

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sdn-dev/sdn/spec"
)

// The probe matrix, in the style of the Kubernetes network-policy e2e
// suite: 3 networks (infra, the admin network; proj1; proj2, with the
// labels of examples/networks.hcl) × 3 workloads on 2 hosts, probed on
// tcp/80, tcp/81 and udp/53 by real packets and asked of the model
// (Verdict). Every scenario's expectation is written by hand from
// docs/policy.md, as a few lines of Go over (from, to, port); none is
// captured from the implementation.
//
// The workloads of network N: x (app=web, tier=front; named ports
// http=tcp/80, dns=udp/53), y (app=db, tier=back; http=tcp/81), z
// (app=cache, no tier, no named ports).
func matrixWorkloads() []*pw {
	mk := func(id, host, net, app, tier string, ports map[string]string) *pw {
		l := map[string]string{"app": app}
		if tier != "" {
			l["tier"] = tier
		}
		return &pw{id: id, host: host, net: net, labels: l, ports: ports}
	}
	xPorts := map[string]string{"http": "tcp/80", "dns": "udp/53"}
	yPorts := map[string]string{"http": "tcp/81"}
	return []*pw{
		mk("ix", "host1", "infra", "web", "front", xPorts),
		mk("iy", "host2", "infra", "db", "back", yPorts),
		mk("iz", "host2", "infra", "cache", "", nil),
		mk("p1x", "host1", "proj1", "web", "front", xPorts),
		mk("p1y", "host2", "proj1", "db", "back", yPorts),
		mk("p1z", "host1", "proj1", "cache", "", nil),
		mk("p2x", "host2", "proj2", "web", "front", xPorts),
		mk("p2y", "host1", "proj2", "db", "back", yPorts),
		mk("p2z", "host2", "proj2", "cache", "", nil),
	}
}

// Shorthands for the expectations.
func (c cell) is(proto string, n int) bool { return c.port.proto == proto && c.port.n == n }
func (c cell) tcp80() bool                 { return c.is("tcp", 80) }
func (c cell) tcp81() bool                 { return c.is("tcp", 81) }
func (c cell) udp53() bool                 { return c.is("udp", 53) }
func (c cell) app(w *pw) string            { return w.labels["app"] }

// The baselines of docs/policy.md, "Baseline": egress is always allowed;
// ingress by the isolation mode.
func flat(cell) bool      { return true }
func sameNet(c cell) bool { return c.from.net == c.to.net }
func multitenant(c cell) bool {
	return c.from.net == c.to.net || c.from.net == "infra" || c.to.net == "infra"
}

// scenario is one policy file applied on top of examples/ (with the
// cluster's isolation set), and what it allows.
type scenario struct {
	name      string
	isolation string // "" = multitenant (examples/cluster.hcl)
	hcl       string // $HOST1_BLOCK and $P2Y are replaced at run time
	want      func(c cell) bool
}

func matrixScenarios() []scenario {
	return append(append(baselineScenarios(), networkScenarios()...), clusterScenarios()...)
}

func baselineScenarios() []scenario {
	return []scenario{
		{name: "baseline-flat", isolation: "flat", want: flat},
		{name: "baseline-multitenant", want: multitenant},
		{name: "baseline-policy", isolation: "policy", want: sameNet},
		{name: "flat-deny-all-proj2", isolation: "flat",
			hcl: `policy "deny" {
  network = "proj2"
  isolate = ["ingress"]
}`,
			want: func(c cell) bool { return c.to.net != "proj2" }},
		{name: "policy-mode-allow-from-infra", isolation: "policy",
			// Selected proj1 workloads get exactly what the rule allows:
			// infra, not their own network any more.
			hcl: `policy "from-infra" {
  network = "proj1"
  ingress {
    from {
      networks { match_labels = { name = "infra" } }
    }
  }
}`,
			want: func(c cell) bool {
				if c.to.net == "proj1" {
					return c.from.net == "infra"
				}
				return sameNet(c)
			}},
	}
}

func networkScenarios() []scenario {
	return append(networkIngressScenarios(), networkEgressScenarios()...)
}

func networkIngressScenarios() []scenario {
	toP1 := func(rule func(c cell) bool) func(c cell) bool {
		return func(c cell) bool {
			if c.to.net == "proj1" {
				return rule(c)
			}
			return multitenant(c)
		}
	}
	return []scenario{
		{name: "deny-all-ingress", hcl: `policy "deny" {
  network = "proj1"
}`, want: toP1(func(cell) bool { return false })},
		{name: "allow-same-network", hcl: `policy "same" {
  network = "proj1"
  ingress {
    from {
      workloads {}
    }
  }
}`, want: toP1(func(c cell) bool { return c.from.net == "proj1" })},
		{name: "rule-without-peer-opens-every-network", hcl: `policy "http" {
  network = "proj1"
  ingress {
    port {
      port = 80
    }
  }
}`, want: toP1(func(c cell) bool { return c.tcp80() })},
		{name: "port-range", hcl: `policy "range" {
  network = "proj1"
  ingress {
    from {
      workloads {}
    }
    port {
      port     = 80
      end_port = 81
    }
  }
}`, want: toP1(func(c cell) bool { return c.from.net == "proj1" && (c.tcp80() || c.tcp81()) })},
		{name: "udp-only", hcl: `policy "dns" {
  network = "proj1"
  ingress {
    port {
      protocol = "udp"
      port     = 53
    }
  }
}`, want: toP1(func(c cell) bool { return c.udp53() })},
		{name: "named-port-ingress", hcl: `policy "named" {
  network = "proj1"
  ingress {
    from {
      workloads {}
    }
    port { name = "http" }
  }
}`, want: toP1(func(c cell) bool {
			// http is tcp/80 on x, tcp/81 on y; z declares none.
			return c.from.net == "proj1" && ((c.app(c.to) == "web" && c.tcp80()) || (c.app(c.to) == "db" && c.tcp81()))
		})},
		{name: "select-in", hcl: `policy "in" {
  network = "proj1"
  workloads {
    match_expression {
      key      = "app"
      operator = "In"
      values   = ["web", "db"]
    }
  }
  ingress {
    from {
      workloads {}
    }
  }
}`, want: toP1(func(c cell) bool {
			if c.app(c.to) == "cache" {
				return multitenant(c) // not selected
			}
			return c.from.net == "proj1"
		})},
		{name: "select-notin", hcl: `policy "notin" {
  network = "proj1"
  workloads {
    match_expression {
      key      = "app"
      operator = "NotIn"
      values   = ["web"]
    }
  }
}`, want: toP1(func(c cell) bool { return c.app(c.to) == "web" && multitenant(c) })},
		{name: "select-exists", hcl: `policy "exists" {
  network = "proj1"
  workloads {
    match_expression {
      key      = "tier"
      operator = "Exists"
    }
  }
}`, want: toP1(func(c cell) bool { return c.app(c.to) == "cache" && multitenant(c) })},
		{name: "select-doesnotexist", hcl: `policy "dne" {
  network = "proj1"
  workloads {
    match_expression {
      key      = "tier"
      operator = "DoesNotExist"
    }
  }
}`, want: toP1(func(c cell) bool { return c.app(c.to) != "cache" && multitenant(c) })},
		{name: "peer-expression", hcl: `policy "front" {
  network = "proj1"
  ingress {
    from {
      workloads {
        match_expression {
          key      = "tier"
          operator = "In"
          values   = ["front"]
        }
      }
    }
  }
}`, want: toP1(func(c cell) bool { return c.from.id == "p1x" })},
		{name: "networks-peer", hcl: `policy "prod" {
  network = "proj2"
  ingress {
    from {
      networks { match_labels = { env = "prod" } }
    }
  }
}`, want: func(c cell) bool {
			if c.to.net == "proj2" {
				return c.from.net == "infra" || c.from.net == "proj1"
			}
			return multitenant(c)
		}},
		{name: "network-and-workload", hcl: `policy "and" {
  network = "proj2"
  ingress {
    from {
      networks  { match_labels = { team = "payments" } }
      workloads { match_labels = { app = "web" } }
    }
  }
}`, want: func(c cell) bool {
			if c.to.net == "proj2" {
				return c.from.id == "p1x"
			}
			return multitenant(c)
		}},
		{name: "peers-or", hcl: `policy "or" {
  network = "proj2"
  ingress {
    from {
      networks  { match_labels = { name = "proj1" } }
      workloads { match_labels = { app = "db" } }
    }
    from {
      workloads { match_labels = { app = "cache" } }
    }
  }
}`, want: func(c cell) bool {
			if c.to.net == "proj2" {
				return c.from.id == "p1y" || c.from.id == "p2z"
			}
			return multitenant(c)
		}},
		{name: "cidr-except-host2", hcl: `policy "cidr" {
  network = "proj1"
  ingress {
    from {
      cidr   = "10.128.0.0/14"
      except = ["$HOST2_BLOCK"]
    }
  }
}`, want: toP1(func(c cell) bool { return c.from.host == "host1" })},
		{name: "cidr-except-one", hcl: `policy "cidr" {
  network = "proj1"
  ingress {
    from {
      cidr   = "10.128.0.0/14"
      except = ["$P2Y/32"]
    }
  }
}`, want: toP1(func(c cell) bool { return c.from.id != "p2y" })},
		{name: "deny-beats-allow", hcl: `policy "allow" {
  network = "proj1"
  ingress {
    from {
      workloads {}
    }
  }
}
policy "deny-db" {
  network = "proj1"
  ingress {
    action = "deny"
    from {
      workloads { match_labels = { app = "db" } }
    }
  }
}`, want: toP1(func(c cell) bool { return c.from.net == "proj1" && c.app(c.from) != "db" })},
		{name: "priority-allow-first", hcl: `policy "allow-db" {
  network  = "proj1"
  priority = 100
  ingress {
    from {
      workloads { match_labels = { app = "db" } }
    }
  }
}
policy "deny-rest" {
  network  = "proj1"
  priority = 200
  ingress {
    action = "deny"
    from {
      workloads {}
    }
  }
}`, want: toP1(func(c cell) bool { return c.from.id == "p1y" })},
	}
}

func networkEgressScenarios() []scenario {
	fromP1 := func(rule func(c cell) bool) func(c cell) bool {
		return func(c cell) bool {
			if c.from.net == "proj1" {
				return rule(c)
			}
			return multitenant(c)
		}
	}
	return []scenario{
		{name: "egress-deny-all-x", hcl: `policy "quiet" {
  network = "proj1"
  workloads { match_labels = { app = "web" } }
  isolate = ["egress"]
}`, want: func(c cell) bool { return c.from.id != "p1x" && multitenant(c) }},
		{name: "egress-default-isolates-both", hcl: `policy "dns-out" {
  network = "proj1"
  egress {
    to {
      cidr = "0.0.0.0/0"
    }
    port {
      protocol = "udp"
      port     = 53
    }
  }
}`, want: func(c cell) bool {
			// Egress rules make the default isolate ingress and egress.
			if c.to.net == "proj1" {
				return false
			}
			if c.from.net == "proj1" {
				return c.udp53() && multitenant(c)
			}
			return multitenant(c)
		}},
		{name: "egress-same-network-only", hcl: `policy "inside" {
  network = "proj1"
  isolate = ["egress"]
  egress {
    to {
      workloads {}
    }
  }
}`, want: fromP1(func(c cell) bool { return c.to.net == "proj1" })},
		{name: "egress-cannot-enter-tenant", hcl: `policy "to-proj2" {
  network = "proj1"
  isolate = ["egress"]
  egress {
    to {
      networks { match_labels = { name = "proj2" } }
    }
  }
}`, want: fromP1(func(cell) bool { return false })},
		{name: "egress-named-port-to-peers", hcl: `policy "http-out" {
  network = "proj1"
  isolate = ["egress"]
  egress {
    to {
      networks {}
    }
    port { name = "http" }
  }
}`, want: fromP1(func(c cell) bool {
			named := (c.app(c.to) == "web" && c.tcp80()) || (c.app(c.to) == "db" && c.tcp81())
			return named && multitenant(c)
		})},
	}
}

func clusterScenarios() []scenario {
	return []scenario{
		{name: "cluster-deny-over-network-allow", hcl: `policy "no-infra-into-proj1" {
  networks { match_labels = { name = "proj1" } }
  ingress {
    action = "deny"
    from {
      networks { match_labels = { name = "infra" } }
    }
  }
}
policy "open" {
  network = "proj1"
  ingress {
    from {
      networks {}
    }
  }
}`, want: func(c cell) bool {
			if c.to.net == "proj1" {
				return c.from.net != "infra"
			}
			return multitenant(c)
		}},
		{name: "cluster-allow-across-tenants", hcl: `policy "proj1-to-web2" {
  networks  { match_labels = { name = "proj2" } }
  workloads { match_labels = { app = "web" } }
  ingress {
    from {
      networks { match_labels = { name = "proj1" } }
    }
    port {
      port = 80
    }
  }
}`, want: func(c cell) bool {
			// Not isolating: proj2's web keeps its baseline, plus proj1 on tcp/80.
			return multitenant(c) || (c.to.id == "p2x" && c.from.net == "proj1" && c.tcp80())
		}},
		{name: "cluster-pass", hcl: `policy "pass-web" {
  workloads { match_labels = { app = "web" } }
  priority  = 10
  ingress {
    action = "pass"
    from {
      networks { match_labels = { name = "infra" } }
    }
  }
}
policy "deny-infra" {
  priority = 20
  ingress {
    action = "deny"
    from {
      networks { match_labels = { name = "infra" } }
    }
  }
}`, want: func(c cell) bool {
			if c.from.net == "infra" && c.app(c.to) != "web" {
				return false
			}
			return multitenant(c)
		}},
		{name: "cluster-pass-to-network-policy", hcl: `policy "pass-proj1" {
  networks { match_labels = { name = "proj1" } }
  priority = 10
  ingress {
    action = "pass"
  }
}
policy "allow-all" {
  priority = 20
  ingress {}
}
policy "only-db" {
  network = "proj1"
  ingress {
    from {
      workloads { match_labels = { app = "db" } }
    }
  }
}`, want: func(c cell) bool {
			if c.to.net == "proj1" {
				return c.from.id == "p1y"
			}
			return true // allow-all admits everyone, across tenants
		}},
		{name: "cluster-deny-beats-allow-at-equal-priority", hcl: `policy "allow-all" {
  priority = 50
  ingress {}
}
policy "deny-proj2" {
  priority = 50
  ingress {
    action = "deny"
    from {
      networks { match_labels = { name = "proj2" } }
    }
  }
}`, want: func(c cell) bool { return c.from.net != "proj2" }},
		{name: "cluster-priority", hcl: `policy "cache-first" {
  networks { match_labels = { name = "proj2" } }
  priority = 10
  ingress {
    from {
      workloads { match_labels = { app = "cache" } }
    }
  }
}
policy "deny-rest" {
  networks { match_labels = { name = "proj2" } }
  priority = 20
  ingress {
    action = "deny"
  }
}`, want: func(c cell) bool {
			if c.to.net == "proj2" {
				return c.app(c.from) == "cache"
			}
			return multitenant(c)
		}},
		{name: "cluster-egress-deny-dns", hcl: `policy "no-dns-from-dev" {
  networks { match_labels = { env = "dev" } }
  egress {
    action = "deny"
    to {
      cidr = "0.0.0.0/0"
    }
    port {
      protocol = "udp"
      port     = 53
    }
  }
}`, want: func(c cell) bool {
			if c.from.net == "proj2" && c.udp53() {
				return false
			}
			return multitenant(c)
		}},
		{name: "cluster-isolate", hcl: `policy "db-from-web" {
  workloads { match_labels = { app = "db" } }
  isolate   = ["ingress"]
  ingress {
    from {
      workloads { match_labels = { app = "web" } }
    }
  }
}`, want: func(c cell) bool {
			if c.app(c.to) == "db" {
				return c.app(c.from) == "web" // any network's web, across tenants
			}
			return multitenant(c)
		}},
	}
}

// TestPolicyMatrix applies every scenario in turn (`sdnctl apply --prune
// --wait` of examples/ with the scenario's isolation and policies, so each
// replaces the last) and checks every cell by packets and by the model.
func TestPolicyMatrix(t *testing.T) {
	needDatapath(t)
	ws := matrixWorkloads()
	l := policyLab(t, "pm", ws)
	byID := map[string]*pw{}
	for _, w := range ws {
		byID[w.id] = w
	}
	host2Block := netip.MustParsePrefix(byID["p1y"].w.Address).Masked().String()
	vars := strings.NewReplacer("$HOST2_BLOCK", host2Block, "$P2Y", byID["p2y"].w.IP)
	cells := allCells(ws)
	scenarios := matrixScenarios()
	if len(scenarios) < 30 {
		t.Fatalf("%d scenarios; the matrix promises at least 30", len(scenarios))
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			dir := scenarioDir(t, sc.isolation, vars.Replace(sc.hcl))
			if _, err := l.Sdnctl("apply", "--prune", "-f", dir, "--wait"); err != nil {
				t.Fatal(err)
			}
			got := observe(t, l, cells, sc.want)
			checkCells(t, ws, cells, sc.want, got)
		})
	}
}

// scenarioDir writes examples/ with the cluster's isolation set (unless
// "") and the scenario's policies to a new directory.
func scenarioDir(t *testing.T, isolation, policies string) string {
	t.Helper()
	dir := t.TempDir()
	files, _ := filepath.Glob("../examples/*.hcl")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if isolation != "" && filepath.Base(f) == "cluster.hcl" {
			b = []byte(strings.Replace(string(b), `isolation = "multitenant"`, `isolation = "`+isolation+`"`, 1))
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if policies != "" {
		if err := os.WriteFile(filepath.Join(dir, "policies.hcl"), []byte(policies+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestPolicyScenariosDecode checks, without a lab, that every scenario of
// the matrix is valid HCL and valid policy, and that it has its own name.
func TestPolicyScenariosDecode(t *testing.T) {
	seen := map[string]bool{}
	for _, sc := range matrixScenarios() {
		if seen[sc.name] {
			t.Errorf("two scenarios named %s", sc.name)
		}
		seen[sc.name] = true
		src := strings.NewReplacer("$HOST2_BLOCK", "10.128.2.0/23", "$P2Y", "10.128.0.9").Replace(sc.hcl)
		doc, diags := spec.Parse(sc.name+".hcl", []byte(src))
		for _, d := range diags {
			t.Errorf("%s: %s", sc.name, spec.DiagnosticLine(d))
		}
		if sc.hcl != "" && len(doc.Policies) == 0 {
			t.Errorf("%s: no policy decoded", sc.name)
		}
	}
}
