# A static workload: a bare-metal host or a VM attached by hand, declared
# here rather than created by CNI. Without ip, it gets an address from
# host1's block; it stays pending until host1 registers.
workload "db1" {
  network = "proj1"
  node    = "host1"
  labels  = { role = "db" }
}
