cluster {
  host_traffic = "policy"
}

network "proj1" {
  labels = { team = "payments" }
}

workload "web1" {
  network     = "proj1"
  node        = "host1"
  labels      = { app = "web", tier = "frontend" }
  named_ports = { http = "tcp/8080", dns = "udp/53", web = "8081" }
}

policy "web-from-clients" {
  network = "proj1"
  workloads {
    match_labels = { app = "web" }
    match_expression {
      key      = "tier"
      operator = "In"
      values   = ["frontend", "edge"]
    }
  }
  priority = 1000
  isolate  = ["ingress"]

  ingress {
    name   = "clients"
    action = "allow"
    from {
      workloads { match_labels = { role = "client" } }
    }
    from {
      networks  { match_labels = { team = "payments" } }
      workloads { match_labels = { role = "client" } }
    }
    from {
      cidr   = "198.51.100.0/24"
      except = ["198.51.100.128/25"]
    }
    port {
      protocol = "tcp"
      port     = 80
    }
    port {
      port     = 8000
      end_port = 8080
    }
    port { name = "http" }
  }

  egress {
    to {
      cidr = "0.0.0.0/0"
    }
    port {
      protocol = "udp"
      port     = 53
    }
  }
}

# Defaults: priority 1000; isolate ingress plus egress (it has egress rules).
policy "egress-default" {
  network = "proj1"
  egress {
    action = "deny"
    to {
      workloads {
        match_expression {
          key      = "legacy"
          operator = "Exists"
        }
      }
    }
  }
}

# No rules: denies all ingress to the network's workloads.
policy "deny-all" {
  network = "proj1"
  workloads {}
}

# Cluster-wide: isolates nothing by default.
policy "web-from-clients" {
  networks { match_labels = { env = "prod" } }
  priority = 10
  ingress {
    action = "pass"
    from {
      networks {
        match_expression {
          key      = "env"
          operator = "NotIn"
          values   = ["dev"]
        }
      }
    }
    port { protocol = "icmp" }
  }
}
