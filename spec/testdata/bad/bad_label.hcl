network "proj1" {
  labels = {
    "-env"                 = "prod"
    "example.com/team"     = "pay ments"
    "Example.com/x"        = "ok"
    "app.kubernetes.io/name" = "web"
  }
}
