cluster {
  cidr         = "127.0.0.0/8"
  service_cidr = "224.0.0.0/4"
}
