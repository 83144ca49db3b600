cluster {
  cidr        = "10.128.0.0/14"
  host_prefix = 31
}
