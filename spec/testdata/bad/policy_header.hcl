policy "Web" {
  network  = "Proj1"
  priority = 10001
  isolate  = ["ingres", "egress", "egress"]
}

policy "p2" {
  network  = "proj1"
  priority = "5"
  networks { match_labels = { env = "prod" } }
  isolate  = "ingress"
  ingress {
    to {}
  }
}
