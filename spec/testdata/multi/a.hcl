cluster {
  cidr = "10.128.0.0/14"
}

network "proj1" {
}

workload "db1" {
  network = "proj1"
  node    = "host1"
}
