cluster {
  vxlan_port = 70000
  mtu        = 500
}
