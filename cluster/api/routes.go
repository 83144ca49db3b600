package api

import (
	"fmt"
	"strings"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// route says which server answers a method.
type route int

const (
	// local: the server asked answers (watches, server-to-server calls).
	local route = iota
	// toLeader: writes, and reads that need the leader's memory
	// (realization reports); a follower forwards them.
	toLeader
	// toLeaderUnlessStale: linearizable reads; a request that allows a
	// stale answer (GetStale) is answered from the local state.
	toLeaderUnlessStale
)

// routes decides, for every method of the API, which server answers it. A
// test checks that every method served has an entry.
var routes = map[string]route{
	sdnv1.ConfigService_Apply_FullMethodName:      toLeader, // plans too: they read linearizably
	sdnv1.ConfigService_Delete_FullMethodName:     toLeader,
	sdnv1.ConfigService_List_FullMethodName:       toLeaderUnlessStale,
	sdnv1.ConfigService_ListStream_FullMethodName: toLeaderUnlessStale,

	sdnv1.NodeService_Register_FullMethodName:       toLeader,
	sdnv1.NodeService_Remove_FullMethodName:         toLeader,
	sdnv1.NodeService_Watch_FullMethodName:          local, // served from the local state
	sdnv1.NodeService_ReportRealized_FullMethodName: local, // a follower relays it (relay.go)
	sdnv1.NodeService_Heartbeat_FullMethodName:      local, // held in the leader's memory; a follower relays it
	sdnv1.NodeService_Drain_FullMethodName:          toLeader,
	sdnv1.NodeService_Relay_FullMethodName:          toLeader, // a follower's batch for the leader's memory

	sdnv1.WorkloadService_Attach_FullMethodName: toLeader,
	sdnv1.WorkloadService_Detach_FullMethodName: toLeader,

	sdnv1.StatusService_Status_FullMethodName:       toLeader,
	sdnv1.StatusService_WaitRealized_FullMethodName: toLeader,
	sdnv1.StatusService_Compact_FullMethodName:      toLeader,

	sdnv1.ClusterService_Members_FullMethodName:           toLeaderUnlessStale,
	sdnv1.ClusterService_Join_FullMethodName:              toLeader,
	sdnv1.ClusterService_RemoveServer_FullMethodName:      toLeader,
	sdnv1.ClusterService_TransferLeader_FullMethodName:    toLeader,
	sdnv1.ClusterService_Hello_FullMethodName:             local,
	sdnv1.ClusterService_Info_FullMethodName:              local,
	sdnv1.ClusterService_RevokeCertificate_FullMethodName: toLeader,
	sdnv1.ClusterService_ListRevoked_FullMethodName:       toLeader,
	sdnv1.ClusterService_StateHash_FullMethodName:         local, // the leader compares them

	sdnv1.PolicyService_ListPolicies_FullMethodName:  toLeader, // realized counts are the leader's
	sdnv1.PolicyService_Verdict_FullMethodName:       toLeader, // linearizable
	sdnv1.PolicyService_Trace_FullMethodName:         toLeader,
	sdnv1.PolicyService_LabelWorkload_FullMethodName: toLeader,

	sdnv1.NameService_ResolveName_FullMethodName: local, // from the local state; hosts cache it (resolve.go)

	sdnv1.SnapshotService_Save_FullMethodName:    toLeader, // linearizable
	sdnv1.SnapshotService_Restore_FullMethodName: toLeader,
}

// staleRequest is a request that may allow a stale read.
type staleRequest interface{ GetStale() bool }

// routeOf decides who answers one call; methods outside the table (gRPC
// health, reflection) are local.
func routeOf(method string, req any) route {
	r := routes[method]
	if r == toLeaderUnlessStale {
		if sr, ok := req.(staleRequest); (ok && sr.GetStale()) || unsafeFollowerReads {
			return local
		}
		return toLeader
	}
	return r
}

// methodTypes returns constructors of a method's request and response
// messages, from the registered proto descriptors.
func methodTypes(fullMethod string) (in, out func() proto.Message, err error) {
	svc, name, ok := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	if !ok {
		return nil, nil, fmt.Errorf("method %q is not /service/method", fullMethod)
	}
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(svc))
	if err != nil {
		return nil, nil, fmt.Errorf("service of %s: %w", fullMethod, err)
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return nil, nil, fmt.Errorf("%s is not a service", svc)
	}
	md := sd.Methods().ByName(protoreflect.Name(name))
	if md == nil {
		return nil, nil, fmt.Errorf("service %s has no method %s", svc, name)
	}
	ctor := func(desc protoreflect.MessageDescriptor) (func() proto.Message, error) {
		mt, err := protoregistry.GlobalTypes.FindMessageByName(desc.FullName())
		if err != nil {
			return nil, fmt.Errorf("message %s: %w", desc.FullName(), err)
		}
		return func() proto.Message { return mt.New().Interface() }, nil
	}
	if in, err = ctor(md.Input()); err != nil {
		return nil, nil, err
	}
	if out, err = ctor(md.Output()); err != nil {
		return nil, nil, err
	}
	return in, out, nil
}
