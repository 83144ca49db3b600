// Package policy is the meaning of sdn's label policies, as pure functions
// of the desired state: label selectors (Kubernetes LabelSelector
// semantics), a policy's validation, the address groups its peers stand
// for, which rules apply to a workload and in which order, and the verdict
// on a packet with the policy and rule that decided it.
//
// docs/policy.md is the specification; this package is its one
// implementation. The servers use it for address groups and `sdnctl
// verdict`, the agents to order the rules they compile into flows, so the
// model and the datapath cannot disagree on the order.
//
// It links the standard library, the API types and model only
// (CONTRIBUTING.md, "Boundaries").
package policy
