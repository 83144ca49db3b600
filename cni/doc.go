// Command sdn is the sdn CNI plugin (build it as "sdn" into the runtime's
// CNI_PATH). It is a shim (CONTRIBUTING.md, Shape): it parses the network
// configuration and CNI_ARGS, asks the sdnd agent on this host over its
// root-only unix socket to do the work (AgentService: CNIAdd, CNIDel,
// CNICheck, CNIGC; gRPC health for STATUS), and prints the result.
// Everything that changes the host or the cluster happens in the agent,
// which serializes operations per container.
//
// # Versions and verbs
//
// CNI spec 1.1.0, 1.0.0 and 0.4.0 (0.3.0 and 0.3.1 accepted): ADD, CHECK,
// DEL, GC, STATUS and VERSION as the spec defines them for the config's
// cniVersion (GC and STATUS from 1.1.0, CHECK from 0.4.0). The ADD result
// is in the config's cniVersion: the host end of the veth and the
// workload's interface, the address with its gateway, a default route,
// the DNS (the host's DNS server on the gateway); the interfaces' "mtu"
// only from 1.1.0, where the spec has it. `sdn --version` prints the
// plugin's own version and the CNI versions it speaks; run without
// CNI_COMMAND it says the same on stderr (what Nomad fingerprints), and
// VERSION adds it on stderr after the spec's JSON.
//
// Network configuration:
//
//	{"cniVersion":"1.1.0","name":"sdn-proj1","type":"sdn",
//	 "network":"proj1",              // the sdn network; or CNI_ARGS SDN_NETWORK=
//	 "named_ports":{"http":"tcp/8080","dns":"udp/53"},  // optional ("8080" is tcp)
//	 "socket":"/run/sdn/cni.sock",   // optional, this is the default
//	 "capabilities":{"portMappings":true,"bandwidth":true,"ips":true,"mac":true}}
//
// # Capabilities
//
// The runtime passes these in "runtimeConfig" when the config declares
// them (the CNI conventions, https://www.cni.dev/docs/conventions/):
//
//	portMappings  [{"hostPort":8080,"containerPort":80,"protocol":"tcp","hostIP":""}]
//	              host ports of the host the workload runs on, forwarded
//	              to it by sdn (not the portmap plugin), reachable from
//	              other hosts, subject to the network's isolation and
//	              policies; protocol tcp or udp ("" is tcp), hostIP an
//	              address or "" / 0.0.0.0 for all; two workloads of one
//	              host cannot map the same port and protocol
//	bandwidth     {"ingressRate":..,"ingressBurst":..,"egressRate":..,"egressBurst":..}
//	              bits/s and bits, enforced by OVS on the workload's port;
//	              ingress is traffic to the workload
//	ips           ["10.128.0.9"] or ["10.128.0.9/23"]: one address, the
//	              requested one (it must be in this host's block)
//	mac           "0a:58:0a:80:00:09": the workload interface's MAC
//
// "args": {"cni": {"ips": [...], "labels": [{"key":..,"value":..}]}} in the
// config are read too. Precedence for the address: runtimeConfig "ips",
// then args.cni "ips", then CNI_ARGS IP=; for the MAC, runtimeConfig "mac"
// then CNI_ARGS MAC=.
//
// # CNI_ARGS (KEY=VALUE;...)
//
//	SDN_NETWORK=proj1     the network, overriding the config's
//	SDN_NAME=web1         the workload's name in its network
//	IP=10.128.0.9         a requested address (a /prefix is allowed and ignored)
//	MAC=0a:58:0a:80:00:09 a requested MAC
//	SDN_NAMED_PORTS=http:tcp/8080,dns:udp/53
//	                      the workload's named ports, replacing the config's
//	K8S_POD_NAMESPACE, K8S_POD_NAME, K8S_POD_UID
//	                      labels k8s.namespace, k8s.pod; the name (below)
//	NOMAD_ALLOC_ID, NOMAD_JOB_NAME (or NOMAD_JOB_ID), NOMAD_GROUP_NAME,
//	NOMAD_TASK_NAME, NOMAD_NAMESPACE, NOMAD_REGION
//	                      labels nomad.alloc-id, nomad.job, nomad.group, ...
//	key=value             any other pair with a valid label key and value
//	                      is a label (e.g. app=web, team.example.com/tier=db)
//	IgnoreUnknown=1       skip pairs that are neither args sdn knows nor
//	                      valid labels, instead of failing (as libcni's
//	                      LoadArgs does); other K8S_* and NOMAD_* keys are
//	                      always skipped; an arg sdn knows with a bad value
//	                      fails either way
//
// # Names
//
// A workload's name in its network is, in this order:
//
//   - SDN_NAME, as given;
//   - Kubernetes (K8S_POD_NAMESPACE and K8S_POD_NAME differ, or K8S_POD_UID
//     is present; containerd's and CRI-O's CRI): "<namespace>-<pod>";
//   - Podman (K8S_POD_NAME alone, its container's name, as Podman 4 and
//     containers/common pass "IgnoreUnknown=1;K8S_POD_NAME=<name>", or
//     namespace and name equal, as Podman 3 did): the container's name,
//     which is unique only on its host, so the plugin sets name_per_host
//     and the agent names it "<name>-<host>";
//   - Nomad (NOMAD_ALLOC_ID): "<task, else group>-<first 8 of the alloc id>";
//   - otherwise the first 12 characters of the container id;
//
// made a valid DNS label: lowercase, runs of other characters as '-', "w-"
// in front of a name that does not start with a letter, and a name longer
// than 63 characters cut with 8 hex digits of its hash.
//
// # The namespace
//
// ADD and CHECK open CNI_NETNS and send the open file's number (netns_fd),
// keeping it open until the agent answers; the agent reaches the namespace
// through /proc/<plugin pid>/fd/<n>, the pid from the socket's peer
// credentials. So a runtime whose namespace path exists only in its own
// mount namespace (Podman rootful in its own, a containerized kubelet)
// works. The path itself is what the result and the workload's origin
// show. A CNI_NETNS the plugin cannot open is code 8.
//
// # DEL, GC
//
// DEL is idempotent: it succeeds when nothing was attached. When the agent
// is unreachable, DEL fails ("try again later", code 11) rather than
// pretending: the workload's address and its veth are only released by the
// agent, and runtimes retry a failed DEL, whereas a DEL reported as done is
// never repeated and would leak both (the agent's own leak finder releases
// them once the veth is gone, but not while the namespace lives).
//
// GC sends the config's "cni.dev/valid-attachments" (or libcni's
// "cni.dev/attachments") for the config's "network"; the agent releases
// every attachment of this host in that network made by a CNI ADD that is
// not in the list (detach on the servers, port and veth removed). The list
// is required: GC without it is refused (7) rather than taken as empty. A
// config without "network" releases nothing. Several runtimes on one host
// attaching to one sdn network each see only their own attachments: set
// "disableGC": true in all but one's config list.
//
// # STATUS
//
// Decided from the agent's gRPC health: the agent not reachable (no
// socket, nobody accepting, refused), or its service not SERVING (not yet
// registered with the servers, shutting down): 50, "not available". The
// agent SERVING but its "sdn.v1.AgentService/servers" health, which it
// answers by asking the servers' own health (SERVING while they know a
// raft leader), not SERVING or not answering: 51, "limited connectivity":
// existing workloads keep their datapath, new ones cannot attach.
//
// # Error codes
//
// The CNI spec's: 4 for CNI_ARGS that do not parse; 7 for a network
// configuration that does not (runtimeConfig included), or a request the
// agent or the servers refused (an unknown network, a bad name, a host
// port another workload holds); 8 for a CNI_NETNS that does not open; 11,
// "try again later", when the agent is not running or not answering (no
// socket, nobody accepting on it, no answer in time) or the servers are
// out of reach; 50 and 51 for STATUS as above; 5, "I/O failure", when the
// socket refuses the caller or cannot be a socket, which no retry fixes:
// above all permission denied, as the socket is root-only and the runtime
// must run the plugin as root; 999 for anything else (among them an
// exhausted address pool).
package main
