package api

import (
	"strings"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
	"google.golang.org/grpc/health/grpc_health_v1"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"

	"github.com/sdn-dev/sdn/pki"
)

// access says which certificates may make a call, when the API runs with
// mutual TLS (authz.go); with plaintext (--dev) nothing is checked.
type access int

const (
	// anyRole: reads. Every member of the cluster may look.
	anyRole access = iota
	// admin: changes to the desired state and to the cluster, made by
	// people: sdnctl's client certificates (and servers).
	admin
	// agentCall: what an agent does for its host; an agent certificate
	// acts for the node it names only (and servers for any).
	agentCall
	// workloads: attaching and detaching workloads: agents for their own
	// host (CNI), administrators for any (`sdnctl attach`, cleaning up after
	// a host that is gone), servers.
	workloads
	// serverOnly: calls between servers.
	serverOnly
)

// roles of each access, and how refusals describe it.
var accessRoles = map[access][]pki.Role{
	anyRole:    {pki.RoleClient, pki.RoleAgent, pki.RoleServer},
	admin:      {pki.RoleClient, pki.RoleServer},
	agentCall:  {pki.RoleAgent, pki.RoleServer},
	workloads:  {pki.RoleAgent, pki.RoleClient, pki.RoleServer},
	serverOnly: {pki.RoleServer},
}

var accessWhat = map[access]string{
	anyRole:    "a read, open to every certificate",
	admin:      "an administrator's call: it needs a client certificate (sdnctl's, from `sdnctl tls issue --role client`) or a server's",
	agentCall:  "an agent's call: it needs the host's agent certificate or a server's",
	workloads:  "a workload call: it needs an agent, client or server certificate",
	serverOnly: "a call between servers: it needs a server certificate",
}

// methodAccess decides, for every method served, who may call it. It
// lives beside routes (routes.go), which decides who answers; a test
// checks that every method served has an entry in both. A method missing
// here is refused to everyone.
var methodAccess = map[string]access{
	sdnv1.ConfigService_Apply_FullMethodName:      admin, // plans too
	sdnv1.ConfigService_Delete_FullMethodName:     admin,
	sdnv1.ConfigService_List_FullMethodName:       anyRole,
	sdnv1.ConfigService_ListStream_FullMethodName: anyRole,

	sdnv1.NodeService_Register_FullMethodName:       agentCall, // as its own node
	sdnv1.NodeService_Remove_FullMethodName:         admin,
	sdnv1.NodeService_Watch_FullMethodName:          agentCall, // as its own node
	sdnv1.NodeService_ReportRealized_FullMethodName: agentCall, // as its own node
	sdnv1.NodeService_Heartbeat_FullMethodName:      agentCall, // as its own node
	sdnv1.NodeService_Drain_FullMethodName:          admin,
	sdnv1.NodeService_Relay_FullMethodName:          serverOnly,

	sdnv1.WorkloadService_Attach_FullMethodName: workloads, // an agent on its own node
	sdnv1.WorkloadService_Detach_FullMethodName: workloads, // an agent on its own node

	sdnv1.StatusService_Status_FullMethodName:       anyRole,
	sdnv1.StatusService_WaitRealized_FullMethodName: anyRole,
	sdnv1.StatusService_Compact_FullMethodName:      admin,

	sdnv1.ClusterService_Members_FullMethodName:           anyRole,
	sdnv1.ClusterService_Join_FullMethodName:              admin,
	sdnv1.ClusterService_RemoveServer_FullMethodName:      admin,
	sdnv1.ClusterService_TransferLeader_FullMethodName:    admin,
	sdnv1.ClusterService_Hello_FullMethodName:             serverOnly,
	sdnv1.ClusterService_Info_FullMethodName:              serverOnly,
	sdnv1.ClusterService_RevokeCertificate_FullMethodName: admin,
	sdnv1.ClusterService_ListRevoked_FullMethodName:       anyRole,
	sdnv1.ClusterService_StateHash_FullMethodName:         serverOnly,

	sdnv1.PolicyService_ListPolicies_FullMethodName:  anyRole,
	sdnv1.PolicyService_Verdict_FullMethodName:       anyRole,
	sdnv1.PolicyService_Trace_FullMethodName:         anyRole,
	sdnv1.PolicyService_LabelWorkload_FullMethodName: admin,

	sdnv1.NameService_ResolveName_FullMethodName: anyRole, // the hosts' DNS servers (node/dns)

	// A snapshot holds the whole state; a restore replaces it.
	sdnv1.SnapshotService_Save_FullMethodName:    admin,
	sdnv1.SnapshotService_Restore_FullMethodName: admin,

	grpc_health_v1.Health_Check_FullMethodName:                             anyRole,
	grpc_health_v1.Health_List_FullMethodName:                              anyRole,
	grpc_health_v1.Health_Watch_FullMethodName:                             anyRole,
	reflectionv1.ServerReflection_ServerReflectionInfo_FullMethodName:      anyRole,
	reflectionv1alpha.ServerReflection_ServerReflectionInfo_FullMethodName: anyRole,
}

// shortMethod is a method's name for messages: "ConfigService/Apply".
func shortMethod(full string) string {
	return strings.TrimPrefix(strings.TrimPrefix(full, "/"), "sdn.v1.")
}
