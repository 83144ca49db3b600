cluster {
  service_cidr = "172.30.0.0/31"
}
