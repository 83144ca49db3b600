cluster {}

workload "db1" {
  network = "proj1"
  node    = "host1"
  ip      = "10.128.0.10"
  mac     = "0A-58-0A-80-00-0A"
  labels  = { role = "db" }
}

# Same name, other network: a different workload.
workload "db1" {
  network = "proj2"
  node    = "rack2.host3"
}
