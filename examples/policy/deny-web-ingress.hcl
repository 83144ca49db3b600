# Deny all ingress to web (Kubernetes "web-deny-all").
#
# Selects proj1's workloads labelled app=web and isolates their ingress
# with no rule: nothing gets in (but their own host). Expect: no workload
# reaches web, on any port; web itself still reaches others, and the rest
# of proj1 is unchanged (same network reaches, infra reaches).
policy "deny-web-ingress" {
  network = "proj1"
  workloads {
    match_labels = { app = "web" }
  }
  isolate = ["ingress"]
}
