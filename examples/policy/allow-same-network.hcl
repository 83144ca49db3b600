# Allow within the same network (Kubernetes "allow-same-namespace").
#
# Selects every workload of proj1 and lets in traffic from any workload of
# proj1 (a workloads peer in a network's policy means that network's
# workloads). Expect: proj1 reaches proj1 on every port; nothing else
# reaches proj1, the admin network (infra) included: a selected workload
# gets exactly what the rules allow, whatever the isolation mode. In flat
# isolation this is what makes proj1 a closed group.
policy "allow-same-network" {
  network = "proj1"

  ingress {
    name = "same-network"
    from {
      workloads {}
    }
  }
}
