cluster {
  cidr        = cidrsubnet("10.0.0.0/8", 6, 32)
  isolation   = flat
  host_prefix = (23)
  vxlan_port  = var.port
}

network "proj1" {
  labels = { (k) = "v", env = upper("prod") }
}

network "proj2" {
  labels = { for k in ["a"] : k => k }
}
