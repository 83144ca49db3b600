# hello-web: admit app=foo, and not app=bar.
#
# Selects proj1's workloads labelled app=web and lets in proj1's workloads
# labelled app=foo, on every protocol and port (ping included). Expect:
# app=foo reaches web; app=bar, every other proj1 workload and infra are
# denied by proj1/hello-web; web itself still reaches everyone it reached
# (its egress is not isolated). `make lab` applies this file: host1's proj1
# workload is labelled app=web, host2's app=foo, host3's app=bar.
policy "hello-web" {
  network = "proj1"
  workloads {
    match_labels = { app = "web" }
  }

  ingress {
    name = "foo"
    from {
      workloads {
        match_labels = { app = "foo" }
      }
    }
  }
}
