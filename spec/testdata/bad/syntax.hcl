network "proj1" {
  labels = { env = "prod" 
}
