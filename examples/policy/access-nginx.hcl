# access-nginx (the Kubernetes "Declare Network Policy" walk-through).
#
# Selects proj1's workloads labelled app=nginx and lets in proj1's
# workloads labelled access=foo on tcp/80. Relabel a running client and
# the datapath follows:
#
#   sdnctl label workload proj1/client access=foo --wait   # client reaches nginx:80
#   sdnctl label workload proj1/client access=bar --wait   # new connections are denied
#   sdnctl label workload proj1/client access=foo --wait   # allowed again
#
# Expect: only a client labelled access=foo at the time it connects
# reaches nginx, and only on tcp/80.
policy "access-nginx" {
  network = "proj1"
  workloads {
    match_labels = { app = "nginx" }
  }

  ingress {
    name = "access-foo"
    from {
      workloads {
        match_labels = { access = "foo" }
      }
    }
    port {
      protocol = "tcp"
      port     = 80
    }
  }
}
