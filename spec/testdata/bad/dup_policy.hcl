policy "web" {
  network = "proj1"
}

policy "web" {
  network = "proj2"
}

policy "web" {
}

policy "web" {
  network = "proj1"
}

policy "web" {
}
