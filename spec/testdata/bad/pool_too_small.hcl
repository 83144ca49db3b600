cluster {
  cidr        = "10.128.0.0/24"
  host_prefix = 23
}
