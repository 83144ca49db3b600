package main

import (
	"os"

	"github.com/containernetworking/cni/pkg/types"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// openNetns opens the container's namespace (CNI_NETNS) and puts the open
// file's number in the request: the agent reaches the namespace through
// /proc/<plugin pid>/fd/<n> (it learns the pid from the socket), so a path
// only the runtime's mount namespace sees works. The caller keeps the file
// open until the agent answers, then closes it.
func openNetns(req *sdnv1.CNIRequest) (*os.File, error) {
	f, err := os.Open(req.Netns)
	if err != nil {
		return nil, types.NewError(types.ErrInvalidNetNS,
			"sdn: cannot open the container's network namespace CNI_NETNS="+req.Netns, err.Error())
	}
	req.NetnsFd = int32(f.Fd())
	return f, nil
}
