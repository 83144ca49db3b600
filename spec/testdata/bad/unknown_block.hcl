netwrok "proj1" {
}
