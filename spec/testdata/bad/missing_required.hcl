workload "db1" {
  ip = "10.128.0.10"
}
