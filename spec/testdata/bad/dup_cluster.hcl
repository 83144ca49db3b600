cluster {
  cidr = "10.128.0.0/14"
}

cluster {
  cidr = "10.64.0.0/14"
}
