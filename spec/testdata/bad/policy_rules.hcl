policy "rules" {
  network = "proj1"
  ingress {
    name   = "a"
    action = "alow"
  }
  ingress {
    name   = "a"
    action = "pass"
    from {}
    from {
      cidr = "10.0.0.0/8"
      workloads {}
    }
    from {
      except = ["10.1.0.0/16"]
    }
  }
  egress {
    name = "Bad_Name"
    to {
      cidr   = "10.0.0.1/8"
    }
    to {
      cidr   = "10.0.0.0/8"
      except = ["11.0.0.0/16", "10.0.0.0/8", 5]
    }
  }
}

policy "ports" {
  network = "proj1"
  ingress {
    port { protocol = "sctp" }
    port {
      protocol = "icmp"
      port     = 8
    }
    port {
      name = "http"
      port = 80
    }
    port {
      port     = 90
      end_port = 80
    }
    port { end_port = 80 }
    port { port = 70000 }
    port { name = "HTTP" }
    port { protocol = "gre" }
  }
}
