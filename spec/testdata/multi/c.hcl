workload "db1" {
  network = "proj1"
  node    = "host2"
}

workload "web1" {
  netwrk = "proj2"
  node   = "host2"
}
