# Services: a virtual IP (VIP) in front of the workloads a selector picks,
# load-balanced per connection by every host's OVS (docs/services.md).
#
# hello balances over proj1's workloads labelled app=foo or app=bar (in
# `make lab`, host2's and host3's proj1 workloads), port 80 of the VIP to
# their port 8080. Its VIP is allocated from the cluster's service_cidr;
# `sdnctl get services` shows it with the endpoints and their hosts. From
# any workload of proj1 the name hello.proj1.sdn.local resolves to it
# (every host answers DNS on its gateway address). Port 30080 of every
# host's underlay address leads to it too (node_port).
#
# Who may use a service is decided by policy on its endpoints, as for
# direct traffic: hello's endpoints are not isolated, so every workload
# that may reach proj1 (proj1's own, the admin network's) may use it.
service "hello" {
  network = "proj1"
  selector {
    match_expression {
      key      = "app"
      operator = "In"
      values   = ["foo", "bar"]
    }
  }
  port {
    name        = "http"
    port        = 80
    target_port = 8080
    node_port   = 30080
  }
}
