cluster {
  cidr     = "10.128.0.0/14"
  isolaton = "flat"
}
