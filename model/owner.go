package model

import (
	"strings"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// AttachOwnerPrefix starts the container id of an `sdnctl attach` (the
// owner "attach-<namespace inode>"), which the agent records with origin
// kind ATTACH so that no runtime's CNI GC releases it.
const AttachOwnerPrefix = "attach-"

// OwnedKind reports whether workloads of origin kind k are owned by a
// container id and interface on their host (CNI, `sdnctl attach`, the
// Docker driver): owned workloads have a host veth named after their owner
// and are detached by it.
func OwnedKind(k sdnv1.OriginKind) bool {
	switch k {
	case sdnv1.OriginKind_ORIGIN_KIND_CNI, sdnv1.OriginKind_ORIGIN_KIND_ATTACH, sdnv1.OriginKind_ORIGIN_KIND_DOCKER:
		return true
	}
	return false
}

// AgentOriginKind is the origin kind the agent records for an attachment
// through its socket: ATTACH for `sdnctl attach`'s owners, CNI otherwise.
func AgentOriginKind(containerID string) sdnv1.OriginKind {
	if strings.HasPrefix(containerID, AttachOwnerPrefix) {
		return sdnv1.OriginKind_ORIGIN_KIND_ATTACH
	}
	return sdnv1.OriginKind_ORIGIN_KIND_CNI
}
