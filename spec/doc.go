// Package spec decodes the HCL files that declare a network's desired state
// into API objects (sdnv1), and renders diagnostics about them. It is pure:
// it reads files and never talks to a server. `sdnctl validate|plan|apply -f`
// is its user.
//
// The schema (every block and attribute is optional unless noted):
//
//	cluster {                          # at most one, in all files together
//	  cidr         = "10.128.0.0/14"   # workload CIDR; each host gets a block of it
//	  host_prefix  = 23                # prefix length of a host's block (<= 30)
//	  service_cidr = "172.30.0.0/16"   # service virtual IPs; must not overlap cidr
//	  vxlan_port   = 4789
//	  isolation    = "multitenant"     # flat | multitenant | policy
//	  mtu          = 0                 # 0: the hosts' smallest underlay MTU minus 50
//	  host_traffic = "allow"           # or "policy": a workload's own host is a peer like any
//	  dns_domain      = "sdn.local"    # SERVICE.NETWORK.<dns_domain>; lower case, no trailing dot
//	  node_port_range = "30000-32767"  # node ports services may use, inclusive
//	}
//	network "proj1" {                  # name: a DNS label
//	  admin  = false                   # at most one admin network (VNID 0)
//	  labels = { env = "prod" }        # Kubernetes label syntax
//	  snat   = true                    # traffic leaving the cluster takes the host's address
//	}
//	workload "db1" {                   # a static endpoint: bare-metal host or VM
//	  network = "proj1"                # required; may be declared on the server only
//	  node    = "host1"                # required
//	  ip      = "10.128.0.10"
//	  mac     = "0a:58:0a:80:00:0a"
//	  labels  = { role = "db" }
//	  named_ports = { http = "tcp/8080", dns = "udp/53" }   # "8080" is tcp
//	}
//	policy "web-from-clients" {        # see docs/policy.md, "HCL, every attribute"
//	  network = "proj1"                # omit for a cluster-wide policy
//	  workloads { match_labels = { app = "web" } }
//	  ingress {
//	    from { workloads { match_labels = { role = "client" } } }
//	    port { port = 80 }
//	  }
//	}
//	service "web" {                    # see decodeService and docs/services.md, "HCL"
//	  network  = "proj1"               # required
//	  selector { match_labels = { app = "web" } }   # a policy's selector; absent: all the network's workloads
//	  vip      = "172.30.0.10"         # in service_cidr; absent: allocated
//	  port {                           # one or more
//	    name        = "http"           # optional
//	    port        = 80
//	    target_port = "http"           # a number, or the workloads' named port; absent: port
//	    protocol    = "tcp"            # or "udp"
//	    node_port   = 30080            # optional, in node_port_range
//	  }
//	  session_affinity { timeout = "3h" }           # optional; client-IP affinity
//	}
//
// The values above are the cluster defaults, so `cluster {}` is valid. IPv4
// only for now; cidr and service_cidr must be unicast space hosts route
// (model.CheckUsableRange: not 0/8, loopback, link-local, multicast or
// class E). Values are literals: quoted strings, numbers, true, false,
// null ("use the default"), and lists and maps of them. Variables,
// functions, operators, parentheses and ${...} or %{...} are refused with a
// diagnostic at them ($${ and %%{ are literal); nothing is evaluated.
//
// # Files and limits
//
// LoadPaths reads files and directories: a directory's files named *.hcl
// (any case), not its subdirectories; a subdirectory that holds .hcl files
// is an error unless it is named too, since apply --prune would delete
// what it declares. Only regular files are read (a FIFO is refused, not
// waited on), each once however it is named. Before hcl parses a file,
// CheckSource refuses one of more than MaxFileBytes (8 MiB) or MaxTokens
// (1,000,000) tokens, brackets nested deeper than MaxDepth (32) and names
// longer than 63 bytes, so a hostile file is refused cheaply instead of
// overflowing the parser's stack. The files together declare at most
// model.MaxApplyObjects (100,000) objects. Messages quote at most 64 bytes
// of a value (model.Quote), and WriteDiagnostics shows at most 50
// diagnostics and a window of a long line.
//
// A policy's defaults are filled in as docs/policy.md gives them (priority
// 1000, isolate, protocol tcp, action allow), and it is validated with
// policy.Check, each problem reported at the attribute it concerns. Whether
// a network's policy names an existing network is the servers' check, as
// for workloads: the network may be declared on the server only.
//
// A service's ports are checked with model.ValidateServicePorts against
// the node_port_range of the files' cluster block, and its vip with
// model.ValidateVIP against their service_cidr; without a cluster block,
// against the defaults (the servers check both again against the
// cluster's own). Two services with one VIP or one node port, and a
// service declared twice, are refused too. dns_domain and node_port_range
// left unset stay empty (0) in the request, which the servers read as the
// defaults.
//
// Decoding uses hcl body schemas, not gohcl, so every message is ours and
// keeps its source range. Each decoded object carries Origin{HCL, file} and
// a ranges map from attribute name to source range ("" is the block header,
// "name" its label), so the server's violations can point back at the text
// (see ViolationDiagnostics). Diagnostics render as
//
//	file.hcl:12,3-9: Summary; Detail
//
// followed by the source line with the range marked (WriteDiagnostics).
package spec
