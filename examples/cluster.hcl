# Cluster-wide settings. There is one cluster block in all the files applied
# together; every attribute has the default shown here.
cluster {
  # Workload addresses. Each host gets a block of this range when it
  # registers.
  cidr = "10.128.0.0/14"

  # Prefix length of each host's block: /23 is 512 addresses (509 workloads)
  # per host, and a /14 holds 512 such blocks, so 512 hosts.
  host_prefix = 23

  # Virtual IPs of services come from here. It must not overlap cidr.
  service_cidr = "172.30.0.0/16"

  # UDP port of the VXLAN tunnels between hosts (4789 is the IANA port).
  vxlan_port = 4789

  # Who may talk to whom:
  #   flat        every workload reaches every workload;
  #   multitenant networks are isolated from each other, and the admin
  #               network reaches all and is reached by all;
  #   policy      networks are isolated; policies decide inside and across.
  isolation = "multitenant"

  # Workload MTU. Omitted (or 0): the smallest underlay MTU of the hosts
  # minus 50 bytes of VXLAN overhead, e.g. 1450 on a 1500 underlay.
  # mtu = 1450

  # A host the leader has not heard from for the servers' --node-down-after
  # (30s) is marked down; it keeps its subnet and its workloads' addresses
  # this long (so a rebooted host gets them back), then they are released.
  # A duration, or "never" (only `sdnctl node remove` releases them).
  # node_release_after = "24h"
}
