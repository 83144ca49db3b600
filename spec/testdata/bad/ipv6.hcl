cluster {
  cidr = "fd00:10::/48"
}

workload "db1" {
  network = "proj1"
  node    = "host1"
  ip      = "fd00:10::10"
}
