network "proj1" {
  labels = { env = var.env }
}
