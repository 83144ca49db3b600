// Package lab runs a multi-host sdn lab on one machine: every host is a
// network namespace with its own Open vSwitch instance (userspace datapath)
// and its own sdnd, the hosts share an underlay, and workloads are network
// namespaces attached by the real CNI plugin. `make lab` and the integration
// tests use it.
//
// Layout of a lab called NAME with N hosts (every name derives from NAME, so
// several labs run side by side):
//
//	NAME-ul          underlay namespace: Linux bridge br0, one veth per host (h1..hN)
//	NAME-h1..-hN     host namespaces: ul0 = 198.18.X.i/24 (MTU Config.UnderlayMTU,
//	                 default 1500; tx checksum offload off), an OVS instance, sdnd
//	                 (server+agent on host1, agent on the others); node names
//	                 host1..hostN
//	NAME-hostI-W     workload namespaces, attached with `sdn` (CNI) on hostI
//	NAME-s1..-sK     with UpServers: separate `sdnd --server`s (198.18.X.201..),
//	                 raft ids s1..sK, files in DIR/serverK/; StartAgents then
//	                 runs agent-only sdnds on the hosts (servers.go)
//	DIR/lab.json     marker: which lab owns DIR (Down removes DIR only with it)
//	DIR/hcl/         the HCL files applied (examples/, isolation overridden if asked)
//	DIR/bin.path     the binaries' directory, for Open
//	DIR/hostI/       ovs/ (OVS run, db and log dir), data/ (sdnd), sdnd.log,
//	                 sdnd.pid, api.sock (host1), cni.sock, workloads/*.json
//	DIR/tls/         the lab's CA and certificates: every sdnd runs with mutual
//	                 TLS (server-host1, server-sK, agent-hostI); sdnctl uses
//	                 client-admin (SdnctlTLSFlags), the lab's own calls server-lab
//
// The underlay subnet 198.18.X.0/24 lies in 198.18.0.0/15 and is derived from
// NAME (stable, see Subnet). Nothing is created in the root namespace: no
// link, no address, no route; sdnctl reaches host1's API through its unix
// socket, which namespaces do not hide.
//
// Up is idempotent: on a running lab it keeps what works and repairs what
// does not (a lost namespace or underlay link, a dead OVS daemon or sdnd,
// an sdnd older than its ovs-vswitchd or than bin/sdnd, a workload whose
// namespace vanished). After the apply it pings every host from every other
// over the underlay, which also fills OVS's tunnel neighbour caches.
//
// Expected encodes what each isolation mode promises with no policies:
// flat, all pairs; multitenant, same network or either side admin; policy,
// same network only (the admin network is not special there).
//
// Down removes exactly what the lab made (its processes by pidfile and by
// their command lines naming DIR, its namespaces by name, DIR) and is safe to
// repeat, from any process that knows NAME and DIR.
package lab
