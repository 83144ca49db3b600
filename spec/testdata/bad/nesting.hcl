network "deep" {
  labels = { a = { a = { a = { a = { a = { a = { a = { a = { a = { a = { a = { a = { a = { a = { a = { a = { a = { a = { a = { a = { a = { a = { a = { a = { a = { a = { a = { a = { a = { a = { a = { a = { a = { a = { a = { a = { a = { a = { a = { a = "b" } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } }
}
