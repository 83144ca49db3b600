network "proj1" {
  labels = { env = "prod" }
}

network "proj1" {
  labels = { env = "dev" }
}
