package spec

import (
	"fmt"
	"net/netip"

	"github.com/hashicorp/hcl/v2"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// document runs the checks that span objects and files (one cluster block,
// unique names, one admin network, distinct static addresses inside the
// cluster CIDR, services against the cluster settings and each other) and
// builds the Document. Of duplicates, the first is kept
// and the later ones are reported.
func (all *decoded) document() (*Document, hcl.Diagnostics) {
	doc := &Document{Files: all.files}
	if doc.Files == nil {
		doc.Files = map[string]*hcl.File{}
	}
	var diags hcl.Diagnostics
	errorf := func(subject hcl.Range, summary, format string, args ...any) {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary,
			Detail: fmt.Sprintf(format, args...), Subject: subject.Ptr()})
	}
	lines := lineIndex{}
	at := func(ranges map[string]*sdnv1.SourceRange, key string) hcl.Range {
		sr := ranges[key]
		if sr == nil {
			sr = ranges[""]
		}
		return lines.fileRange(doc.Files, HCLRange(sr))
	}

	for i, cs := range all.clusters {
		if i == 0 {
			doc.Cluster = cs
			continue
		}
		errorf(at(cs.Ranges, ""), "Duplicate cluster block",
			"A cluster block is already declared at %s; declare the cluster settings once.", at(doc.Cluster.Ranges, ""))
	}

	networks := map[string]*sdnv1.Network{}
	var admin *sdnv1.Network
	for _, n := range all.networks {
		if first := networks[n.Name]; first != nil {
			errorf(at(n.Ranges, "name"), "Duplicate network",
				"A network named %s is already declared at %s; network names are unique, so rename or remove one.",
				model.Quote(n.Name), at(first.Ranges, "name"))
			continue
		}
		networks[n.Name] = n
		doc.Networks = append(doc.Networks, n)
		if !n.Admin {
			continue
		}
		if admin != nil {
			errorf(at(n.Ranges, "admin"), "More than one admin network",
				"Network %s is declared admin, but %s already is (%s); at most one network is admin (it gets VNID 0).",
				model.Quote(n.Name), model.Quote(admin.Name), at(admin.Ranges, "admin"))
			continue
		}
		admin = n
	}

	var cidr netip.Prefix
	if doc.Cluster != nil {
		if p, err := netip.ParsePrefix(doc.Cluster.Cidr); err == nil && p.Addr().Is4() && p.Masked() == p {
			cidr = p
		}
	}
	workloads := map[string]*sdnv1.Workload{}
	ips := map[string]*sdnv1.Workload{}
	for _, w := range all.workloads {
		full := model.WorkloadKey(w.Network, w.Name)
		if first := workloads[full]; first != nil && w.Network != "" {
			errorf(at(w.Ranges, "name"), "Duplicate workload",
				"A workload named %s on network %s is already declared at %s; workload names are unique within a network, so rename or remove one.",
				model.Quote(w.Name), model.Quote(w.Network), at(first.Ranges, "name"))
			continue
		}
		workloads[full] = w
		doc.Workloads = append(doc.Workloads, w)
		if w.Ip == "" {
			continue
		}
		if first := ips[w.Ip]; first != nil {
			errorf(at(w.Ranges, "ip"), "Duplicate IP address",
				"ip %s of workload %s is already given to workload %s at %s; each workload needs its own address.",
				w.Ip, model.Quote(full), model.Quote(model.WorkloadKey(first.Network, first.Name)), at(first.Ranges, "ip"))
			continue
		}
		ips[w.Ip] = w
		if a, err := netip.ParseAddr(w.Ip); err == nil && cidr.IsValid() && !cidr.Contains(a) {
			errorf(at(w.Ranges, "ip"), "IP address outside the cluster CIDR",
				"ip %s of workload %s is not in the cluster cidr %s (%s); choose an address in the node's block of it, or omit ip to have one allocated.",
				w.Ip, model.Quote(full), cidr, at(doc.Cluster.Ranges, "cidr"))
		}
	}
	diags = append(diags, all.uniquePolicies(doc, at)...)
	diags = append(diags, all.checkServices(doc, at)...)
	return doc, diags
}

// uniquePolicies keeps the first policy of each key ("network/name", or
// "name" cluster-wide) and reports the later ones.
func (all *decoded) uniquePolicies(doc *Document, at func(map[string]*sdnv1.SourceRange, string) hcl.Range) hcl.Diagnostics {
	var diags hcl.Diagnostics
	policies := map[string]*sdnv1.Policy{}
	for _, p := range all.policies {
		key := model.PolicyKey(p)
		if first := policies[key]; first != nil {
			scope := "among cluster-wide policies (no network)"
			if p.Network != "" {
				scope = "within network " + model.Quote(p.Network)
			}
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate policy",
				Detail: fmt.Sprintf("A policy named %s is already declared at %s; policy names are unique %s, so rename or remove one.",
					model.Quote(p.Name), at(first.Ranges, "name"), scope),
				Subject: at(p.Ranges, "name").Ptr()})
			continue
		}
		policies[key] = p
		doc.Policies = append(doc.Policies, p)
	}
	return diags
}
