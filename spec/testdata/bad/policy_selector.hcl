policy "sel" {
  network = "proj1"
  workloads {
    match_labels = { "bad key!" = "x", app = "ok" }
    match_expression {
      key      = "tier"
      operator = "in"
      values   = ["a"]
    }
    match_expression {
      key      = "tier"
      operator = "Exists"
      values   = ["a"]
    }
    match_expression {
      key      = "tier"
      operator = "NotIn"
    }
    match_expression {
      operator = "DoesNotExist"
    }
  }
  workloads {}
}
