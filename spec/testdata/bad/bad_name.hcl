network "Proj_1" {
}

workload "1db" {
  network = "proj1"
  node    = "host1"
}
