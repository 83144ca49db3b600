# Cluster settings, every attribute away from its default. Applied before
# any host registers: the CIDR cannot change once hosts hold subnets.
# node_release_after is short so that the generator sees a host released;
# never.hcl sets it to "never" before the fixture is taken.
cluster {
  cidr               = "10.64.0.0/16"
  host_prefix        = 24
  service_cidr       = "172.20.0.0/16"
  vxlan_port         = 8472
  isolation          = "policy"
  mtu                = 1400
  node_release_after = "1s"
}
