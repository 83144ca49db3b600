cluster {
  isolation = "multitennant"
}
