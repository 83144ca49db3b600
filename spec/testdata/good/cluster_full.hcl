cluster {
  cidr         = "10.0.0.0/8"
  host_prefix  = 24
  service_cidr = "192.168.0.0/16"
  vxlan_port   = 8472
  isolation    = "policy"
  mtu          = 8950

  node_release_after = "2h30m"
}
