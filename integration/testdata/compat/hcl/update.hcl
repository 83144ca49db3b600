# Updates of objects objects.hcl created: other labels, another file.
network "web" {
  labels = { env = "prod", team = "edge" }
}

workload "lb1" {
  network = "web"
  node    = "host1"
  ip      = "10.64.0.10"
  mac     = "02:00:0a:40:00:0a"
  labels  = { role = "lb", tier = "edge", version = "2" }
}
