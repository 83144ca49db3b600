# Applied by TestCompatDiskFormat to the opened fixture: the store must take
# writes, allocating a VNID, an address and a MAC past what it holds.
network "late" {
  labels = { added = "after-open" }
}

workload "w1" {
  network = "late"
  node    = "host1"
  labels  = { added = "after-open" }
}
