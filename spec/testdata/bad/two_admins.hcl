network "infra" {
  admin = true
}

network "ops" {
  admin = true
}
