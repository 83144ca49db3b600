cluster {}

workload "db1" {
  network = "proj1"
  node    = "host1"
  ip      = "10.128.0.300"
  mac     = "0a:58:0a:80:00"
}

workload "db2" {
  network = "proj1"
  node    = "host1"
  ip      = "192.168.1.10"
  mac     = "01:00:5e:00:00:01"
}
