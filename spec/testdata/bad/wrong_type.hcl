cluster {
  host_prefix = "23"
  cidr        = 10
}

network "proj1" {
  admin  = "yes"
  labels = ["env", "prod"]
}

workload "db1" {
  network = "proj1"
  node    = "host1"
  labels  = { tier = 1 }
}
