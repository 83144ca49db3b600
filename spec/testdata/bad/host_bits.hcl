cluster {
  cidr = "10.128.0.1/14"
}
