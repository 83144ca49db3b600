package suites

import (
	"fmt"
	"strings"

	"github.com/sdn-dev/sdn/integration/lab"
)

// The policy suite's HCL: what its lab is loaded with, written as the
// files an operator would apply (policy blocks as docs/policy.md, "HCL,
// every attribute", describes them).

// policySizes are the suite's sizes (full and quick).
type policySizes struct {
	selected, peers int // flows figure: N workloads selected, M peer workloads
	workloads       int // the label figure's load: static workloads ...
	policies        int // ... and policies, across the lab's hosts
	flips           int // label changes per round
	rules           int // rules selecting the measured pair
	memWorkloads    int // the memory figure's load
	memPolicies     int
}

var (
	fullPolicySizes  = policySizes{selected: 200, peers: 200, workloads: 1000, policies: 100, flips: 20, rules: 1000, memWorkloads: 10000, memPolicies: 1000}
	quickPolicySizes = policySizes{selected: 50, peers: 50, workloads: 200, policies: 20, flips: 4, rules: 100, memWorkloads: 1000, memPolicies: 100}
)

const (
	polLabHosts    = 2
	polLabNetworks = 10
	// polLatNetwork holds the label figure's two real workloads, polPerf
	// the measured pair of the rules figures (no background policy
	// selects anything in it).
	polLatNetwork = "net-0"
	polPerf       = "perf"
	// polLatPort is where the label figure's server listens; the gate
	// policy admits it only from workloads labelled role=allowed.
	polLatPort = 8080
)

// polBaseHCL is the lab's configuration: host blocks large enough for
// the memory load (a /18 holds 16,381 workloads), multitenant isolation,
// the networks, and the gate policy of the label figure.
func polBaseHCL() string {
	var b strings.Builder
	b.WriteString("cluster {\n  cidr        = \"10.128.0.0/14\"\n  host_prefix = 18\n  isolation   = \"multitenant\"\n}\n")
	for i := range polLabNetworks {
		fmt.Fprintf(&b, "\nnetwork %q {\n  labels = { env = \"e%d\", bench = \"policy\" }\n}\n", memNetwork(i), i%3)
	}
	fmt.Fprintf(&b, "\nnetwork %q {\n  labels = { bench = \"policy-perf\" }\n}\n", polPerf)
	fmt.Fprintf(&b, `
# The label figure's gate: its server admits tcp/%d only from workloads
# labelled role = "allowed"; the bench flips its client's role.
policy "lat-gate" {
  network = %q
  workloads {
    match_labels = { app = "lat-srv" }
  }
  ingress {
    name = "allowed-clients"
    from {
      workloads {
        match_labels = { role = "allowed" }
      }
    }
    port {
      port = %d
    }
  }
}
`, polLatPort, polLatNetwork, polLatPort)
	return b.String()
}

// polStaticHCL declares static workloads first..last-1, spread over the
// lab's hosts and networks, with labels the background policies select
// (one in 50 of polLatNetwork's is role=allowed, in the gate's group).
func polStaticHCL(first, last int) string {
	var b strings.Builder
	for i := first; i < last; i++ {
		network := (i / polLabHosts) % polLabNetworks
		role := fmt.Sprintf("r%d", i%7)
		if network == 0 && i%50 == 0 {
			role = "allowed"
		}
		fmt.Fprintf(&b, "workload \"s-%05d\" {\n  network = %q\n  node    = %q\n  labels  = { app = \"a%d\", role = %q }\n}\n",
			i, memNetwork(network), lab.HostName(i%polLabHosts+1), i%20, role)
	}
	return b.String()
}

// polBackgroundHCL declares background policies first..last-1: each in
// one of the networks, selecting one app, with an ingress rule from a role
// on a port and one from networks by label.
func polBackgroundHCL(first, last int) string {
	var b strings.Builder
	for k := first; k < last; k++ {
		fmt.Fprintf(&b, `policy "bg-%04d" {
  network = %q
  workloads {
    match_labels = { app = "a%d" }
  }
  priority = %d
  ingress {
    from {
      workloads {
        match_labels = { role = "r%d" }
      }
    }
    port {
      port = %d
    }
  }
  ingress {
    from {
      networks {
        match_labels = { env = "e%d" }
      }
    }
    port {
      protocol = "udp"
      port     = %d
    }
  }
}
`, k, memNetwork(k%polLabNetworks), k%20, 100+k%50, k%7, 8000+k%1000, k%3, 9000+k%1000)
	}
	return b.String()
}

// polRulesPolicies is how many policies hold the rules figures' rules.
const polRulesPolicies = 10

// polRulesHCL declares n rules (a multiple of polRulesPolicies) in
// the perf network: half ingress rules of policies selecting the server
// (perf = "srv"), half egress rules of policies selecting the client
// (perf = "cli"). Every rule but the last of each direction misses the
// measured traffic (a CIDR, an address group or a network that does not
// hold the other end, or other ports), mixing allow and deny, single ports,
// ranges, TCP and UDP, /32 to /16 prefixes; the last one (in the policy
// with the highest priority number, evaluated last) allows every port to
// or from the other workload.
func polRulesHCL(n int) string {
	var b strings.Builder
	policies, per := polRulesPolicies, n/polRulesPolicies
	for k := range policies {
		ingress := k < policies/2
		dir, peer, subject, other, isolate := "ingress", "from", "srv", "cli", "ingress"
		if !ingress {
			dir, peer, subject, other, isolate = "egress", "to", "cli", "srv", "egress"
		}
		kk := k % (policies / 2)
		fmt.Fprintf(&b, "policy \"perf-rules-%02d\" {\n  network  = %q\n  workloads {\n    match_labels = { perf = %q }\n  }\n  priority = %d\n  isolate  = [%q]\n",
			k, polPerf, subject, 100+kk, isolate)
		for j := range per {
			i := kk*per + j
			last := kk == policies/2-1 && j == per-1
			if last {
				fmt.Fprintf(&b, "  %s {\n    name = \"the-pair\"\n    %s {\n      workloads {\n        match_labels = { perf = %q }\n      }\n    }\n  }\n", dir, peer, other)
				continue
			}
			fmt.Fprintf(&b, "  %s {\n    name   = \"r%04d\"\n    action = %q\n%s%s  }\n", dir, i, []string{"allow", "deny"}[i%2], polRulePeer(peer, i), polRulePort(i))
		}
		b.WriteString("}\n")
	}
	return b.String()
}

// polRulePeer is rule i's peer block: none of them holds the measured
// pair.
func polRulePeer(peer string, i int) string {
	switch i % 4 {
	case 0:
		a, c := i/256%256, i%256
		cidr := []string{
			fmt.Sprintf("203.%d.%d.1/32", a, c), fmt.Sprintf("203.%d.%d.16/28", a, c),
			fmt.Sprintf("203.%d.%d.0/24", a, c), fmt.Sprintf("203.%d.0.0/16", a),
		}[(i/4)%4]
		return fmt.Sprintf("    %s {\n      cidr = %q\n    }\n", peer, cidr)
	case 1:
		return fmt.Sprintf("    %s {\n      workloads {\n        match_labels = { peer = \"p%d\" }\n      }\n    }\n", peer, i%50)
	case 2:
		return fmt.Sprintf("    %s {\n      cidr   = \"198.51.%d.0/24\"\n      except = [\"198.51.%d.128/25\"]\n    }\n", peer, i%256, i%256)
	default:
		return fmt.Sprintf("    %s {\n      networks {\n        match_labels = { tier = \"t%d\" }\n      }\n    }\n", peer, i)
	}
}

// polRulePort is rule i's port block: a single TCP port, a TCP range or a
// UDP port, none of those the measurements use.
func polRulePort(i int) string {
	switch i % 3 {
	case 0:
		return fmt.Sprintf("    port {\n      port = %d\n    }\n", 20000+i)
	case 1:
		return fmt.Sprintf("    port {\n      port     = %d\n      end_port = %d\n    }\n", 30000+i*10, 30000+i*10+7)
	default:
		return fmt.Sprintf("    port {\n      protocol = \"udp\"\n      port     = %d\n    }\n", 40000+i)
	}
}
