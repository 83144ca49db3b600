cluster {
  cidr = "10.64.0.0/14"
}

network "proj1" {
  labels = { env = "dev" }
}

network "proj2" {
}
