# settings.hcl again with hosts never released (so that the host marked
# down in the fixture stays as it is, however old the fixture) and another
# MTU.
cluster {
  cidr               = "10.64.0.0/16"
  host_prefix        = 24
  service_cidr       = "172.20.0.0/16"
  vxlan_port         = 8472
  isolation          = "policy"
  mtu                = 1380
  node_release_after = "never"
}
