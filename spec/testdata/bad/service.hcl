cluster {
  node_port_range = "31000-31999"
  dns_domain      = "Corp.Example"
}

service "web" {
  network = "proj1"
  vip     = "10.0.0.1"
  port {
    port        = 80
    target_port = "8080"
    node_port   = 30080
  }
  port {
    port     = 80
    protocol = "tcp"
  }
  session_affinity { timeout = "2d" }
}

service "db" {
  network = "proj1"
  port {
    port      = 5432
    node_port = 31080
  }
}

service "cache" {
  network = "proj1"
  port {
    port      = 6379
    node_port = 31080
  }
}
