# More networks, and static workloads with explicit addresses and labels.
# The generator registers host1..host5 first: host1 gets 10.64.0.0/24,
# host2 10.64.1.0/24, and so on.
network "web" {
  labels = { env = "prod", team = "frontend", "app.kubernetes.io/part-of" = "shop" }
}

network "batch" {
  labels = { env = "dev" }
}

# Deleted by the generator (after its workload), so the history has a
# network delete.
network "scratch" {}

workload "lb1" {
  network = "web"
  node    = "host1"
  ip      = "10.64.0.10"
  mac     = "02:00:0a:40:00:0a"
  labels  = { role = "lb", tier = "edge" }
}

workload "lb2" {
  network = "web"
  node    = "host2"
  ip      = "10.64.1.20"
  labels  = { role = "lb" }
}

# On host4, which the generator lets be released: pending again afterwards.
workload "job1" {
  network = "batch"
  node    = "host4"
}

workload "job2" {
  network = "batch"
  node    = "host3"
  labels  = { role = "worker" }
}

workload "tmp1" {
  network = "scratch"
  node    = "host2"
}
