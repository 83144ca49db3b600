cluster {
  node_release_after = "5ms"
}
