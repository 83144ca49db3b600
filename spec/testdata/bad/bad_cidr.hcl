cluster {
  cidr = "10.300.0.0/14"
}
