# Allow into server2 from any workload of a network selected by label
# (Kubernetes "allow traffic from a namespace").
#
# Selects proj2's workloads labelled app=server2 and lets in every workload
# of the networks labelled name=proj1 (examples/networks.hcl labels each
# network with its name). Expect: every proj1 workload reaches server2,
# across tenants, though the cluster's multitenant isolation keeps proj1
# and proj2 apart otherwise; proj2's own workloads and infra no longer
# reach server2 (it is isolated and no rule admits them). Other proj2
# workloads are unchanged.
policy "allow-from-proj1" {
  network = "proj2"
  workloads {
    match_labels = { app = "server2" }
  }

  ingress {
    name = "from-proj1"
    from {
      networks {
        match_labels = { name = "proj1" }
      }
    }
  }
}
