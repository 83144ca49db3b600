# Deny by default for a network (Kubernetes "default-deny-ingress").
#
# Selects every workload of proj1 (no workloads block) and isolates their
# ingress; with no ingress rule, nothing is allowed in. Expect: no workload
# reaches a proj1 workload any more, not even another proj1 workload or the
# admin network (infra); a workload's own host still does (health checks,
# docs/policy.md "Own host"). proj1's workloads still send: their egress is
# not isolated, so proj1 -> infra keeps working.
#
#   sdnctl apply -f examples/policy/deny-all.hcl --wait
#   sdnctl verdict --from infra/NAME --to proj1/NAME --port tcp/80
policy "deny-all" {
  network = "proj1"
  isolate = ["ingress"]
}
