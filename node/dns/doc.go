// Package dns is a host's DNS server for its workloads (docs/services.md,
// "Discovery"). The host role serves it on the host's gateway address,
// port 53, UDP and TCP, in the host's namespace; every workload of the host
// reaches it (the gateway is their default route) and the CNI result names
// it as their nameserver, with the search domains NETWORK.<domain> and
// <domain>. <domain> is the cluster's dns_domain (model.DNSDomain, default
// "sdn.local").
//
// Names inside the domain, all answered authoritatively:
//
//   - SERVICE.NETWORK.<domain> A: the service's VIP, from the agent's
//     desired state as it is at the query (every host holds every service).
//   - _PORT._PROTO.SERVICE.NETWORK.<domain> SRV: a named port of the service
//     (PROTO is tcp or udp), target SERVICE.NETWORK.<domain>, its A record in
//     the additional section. Unnamed ports have no SRV record.
//   - NAME.NETWORK.<domain> A: a workload's address. A host holds its own
//     workloads only, so these are asked of the servers (NameService,
//     ResolveName) with a short timeout and cached for TTL, found or not.
//     When the servers cannot be asked the answer is SERVFAIL, never
//     NXDOMAIN: the name may well exist.
//   - A service and a workload of the same name in one network: the service
//     wins; the workload is not reachable by that name.
//   - A name that exists has only an A record (SRV for the port names): any
//     other type (AAAA among them) is NOERROR with no answer, so resolvers
//     do not give up on the A record. The domain itself and NETWORK.<domain>
//     of a known network exist (empty: NOERROR, no answer), so a resolver
//     that trusts NXDOMAIN for what lies below (RFC 8020) does not lose the
//     names under them. Every other name in the domain is NXDOMAIN.
//
// Every answer carries TTL seconds (5): services move rarely but a workload
// restarted elsewhere gets a new address, and a client should follow within
// seconds. A workload answer can be up to twice that old downstream (cached
// here, then by the client).
//
// Names outside the domain are forwarded to the host's resolvers (the
// nameserver lines of /etc/resolv.conf, re-read when it changes; never the
// addresses this server listens on), each in turn, over UDP and again over
// TCP when the answer is truncated; SERVFAIL when none answers.
package dns
