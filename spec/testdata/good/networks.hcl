network "infra" {
  admin  = true
  labels = { role = "infra" }
}

network "proj1" {
  admin = false
  labels = {
    env                      = "prod"
    "app.kubernetes.io/part" = "payments"
    "example.com/empty"      = ""
    "Team_1.x"               = "A-b_c.9"
  }
}

network "p-2" {}
