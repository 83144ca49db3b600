workload "db1" {
  network = "proj1"
  node    = "host1"
  ip      = "10.128.0.10"
}

workload "db1" {
  network = "proj1"
  node    = "host2"
}

workload "db2" {
  network = "proj1"
  node    = "host2"
  ip      = "10.128.0.10"
}
