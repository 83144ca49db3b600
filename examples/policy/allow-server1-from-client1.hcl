# Allow server1 only from client1, by labels.
#
# Selects proj1's workloads labelled app=server1 and lets in only workloads
# of proj1 labelled app=client1, on tcp/80. Expect: client1 reaches server1
# on tcp/80 and on nothing else; every other workload (other proj1
# workloads, infra) is denied by proj1/allow-server1-from-client1's
# isolation. Other proj1 workloads are not selected and keep the baseline.
policy "allow-server1-from-client1" {
  network = "proj1"
  workloads {
    match_labels = { app = "server1" }
  }

  ingress {
    name = "client1"
    from {
      workloads {
        match_labels = { app = "client1" }
      }
    }
    port {
      protocol = "tcp"
      port     = 80
    }
  }
}
