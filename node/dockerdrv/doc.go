// Package dockerdrv is sdn's Docker network driver: Docker's remote
// network-driver protocol (libnetwork's docs/remote.md: JSON over HTTP on a
// unix socket Docker finds in /run/docker/plugins), served by the host's
// sdnd when --docker-plugin-socket is set.
//
//	docker network create -d sdn --ipam-driver null --opt network=proj1 proj1
//	docker run --network proj1 ...
//
// CreateNetwork records which sdn network the Docker network maps to
// (--opt network=NAME, the only option; an unknown sdn network is refused)
// in a small file of the agent's, since Docker never repeats it. The scope
// is "local": each host's Docker has its own network object, and sdn's
// servers make them one network.
//
// Addresses are sdn's: the servers allocate them from the host's block at
// Attach, and Docker cannot be told to use them if its own IPAM already
// chose one (libnetwork refuses a driver's address over an IPAM's). A
// remote IPAM driver would have to hand out an address in RequestAddress,
// before any endpoint (or owner) exists, so the driver would have to attach
// an anonymous workload and adopt it later. Instead the network is created
// with Docker's "null" IPAM driver, which allocates nothing; CreateEndpoint
// then answers the address and MAC the servers gave, and Docker configures
// them in the container. A network created with another IPAM driver is
// refused with the flag to use.
//
// CreateEndpoint attaches the workload (WorkloadService.Attach, origin
// ORIGIN_KIND_DOCKER, owner the endpoint id and interface OwnerIfname), so
// the servers' store is the driver's record of endpoints: Join asks Attach
// again (idempotent for the owner), which also serves after an sdnd
// restart. Join creates a veth pair in the host's namespace
// (link.SetupHostPair), plugs the host end into the integration bridge,
// waits until the agent has realized the attach revision, and returns the
// other end as SrcName with DstPrefix "eth"; Docker moves it into the
// container, names it eth0 (eth1, ...), and sets the address, the MAC
// (anti-spoofing expects the servers') and the default route via the
// host's gateway. Leave deletes the pair; DeleteEndpoint detaches the
// workload, releasing its address. Every step succeeds when there is
// nothing left to do.
//
// Docker tells a driver nothing about the container (no name, id or labels
// in CreateEndpoint or Join), and `docker restart` deletes the endpoint and
// creates a new one: the container keeps eth0 and its connectivity, but the
// workload is a new one ("docker-" and 12 characters of the new endpoint
// id) and its address may change. Published ports (-p) are not programmed.
//
// Attach and Detach are retried while the servers elect a leader, as the
// CNI service does (cnisrv.RetryUnavailable).
package dockerdrv
