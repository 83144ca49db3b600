cluster {
  cidr = "10.128.0.0"
}
