# Networks are tenants (projects). Each gets a 24-bit VNID from the cluster;
# in multitenant mode, workloads of different networks cannot talk.

# The admin network gets VNID 0: in multitenant mode it reaches every network
# and every network reaches it (monitoring, DNS, ingress). At most one.
network "infra" {
  admin  = true
  labels = { env = "prod", team = "platform" }
}

# Tenant networks. Labels are for policy selectors (Kubernetes label syntax).
network "proj1" {
  labels = { env = "prod", team = "payments" }
}

network "proj2" {
  labels = { env = "dev", team = "search" }
}
