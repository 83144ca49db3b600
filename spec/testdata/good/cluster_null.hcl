# null means "use the default".
cluster {
  cidr      = null
  isolation = "flat"
  mtu       = null
}
