cluster {
  cidr         = "10.128.0.0/14"
  service_cidr = "10.130.0.0/16"
}
