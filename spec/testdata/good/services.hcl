cluster {
  service_cidr    = "172.30.0.0/16"
  dns_domain      = "corp.example"
  node_port_range = "31000-31999"
}

network "proj1" {
  snat = false
}

network "proj2" {
  snat = true
}

# Every attribute.
service "web" {
  network = "proj1"
  selector {
    match_labels = { app = "web" }
    match_expression {
      key      = "tier"
      operator = "In"
      values   = ["frontend"]
    }
  }
  vip = "172.30.0.10"
  port {
    name        = "http"
    port        = 80
    target_port = "http"
    protocol    = "tcp"
    node_port   = 31080
  }
  port {
    name        = "dns"
    port        = 53
    target_port = 5353
    protocol    = "udp"
  }
  session_affinity { timeout = "30m" }
}

# The least: no selector (every workload of the network), no vip
# (allocated), protocol tcp and target_port the same as port.
service "db" {
  network = "proj2"
  port { port = 5432 }
}

# An empty selector (everything), the same port over tcp and udp, and the
# default affinity timeout (3h).
service "dns" {
  network  = "proj2"
  selector {}
  port {
    port     = 53
    protocol = "udp"
  }
  port { port = 53 }
  session_affinity {}
}
