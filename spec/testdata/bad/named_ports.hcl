workload "w1" {
  network     = "proj1"
  node        = "host1"
  named_ports = { http = "sctp/80", dns = "udp/0", Web = "8080", ok = 80, x = "tcp/http" }
}

workload "w2" {
  network     = "proj1"
  node        = "host1"
  named_ports = ["http"]
}

cluster {
  host_traffic = "polcy"
}
