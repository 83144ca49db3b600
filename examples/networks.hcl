# Networks are tenants (projects). Each gets a 24-bit VNID from the cluster;
# in multitenant mode, workloads of different networks cannot talk.

# The admin network gets VNID 0: in multitenant mode it reaches every network
# and every network reaches it (monitoring, DNS, ingress). At most one.
network "infra" {
  admin  = true
  labels = { name = "infra", env = "prod", team = "platform" }
}

# Tenant networks. Labels are for policy selectors (Kubernetes label syntax);
# name = the network's name lets a policy pick a network by name
# (examples/policy/allow-from-network.hcl), like Kubernetes'
# kubernetes.io/metadata.name label on namespaces.
network "proj1" {
  labels = { name = "proj1", env = "prod", team = "payments" }
}

network "proj2" {
  labels = { name = "proj2", env = "dev", team = "search" }
}
