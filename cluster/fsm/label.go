package fsm

import (
	"fmt"
	"maps"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// labelWorkload sets and removes labels of an existing workload
// (`sdnctl label workload`), at one revision. Labels that are already as
// asked change nothing and commit no revision.
func labelWorkload(e *exec, req *sdnv1.LabelWorkloadRequest) (*Result, *Error) {
	key := model.WorkloadKey(req.Network, req.Name)
	old, ok := e.tx.Workload(req.Network, req.Name)
	if !ok {
		return nil, refuse(CodeNotFound, model.KindWorkload, key, "", fmt.Sprintf("no workload %s; `sdnctl get workloads` lists them", key))
	}
	if msg := checkLabels(req.Set); msg != "" {
		return nil, refuse(CodeInvalid, model.KindWorkload, key, "labels", msg)
	}
	for _, k := range req.Remove {
		if err := model.ValidateLabelKey(k); err != nil {
			return nil, refuse(CodeInvalid, model.KindWorkload, key, "labels", fmt.Sprintf("label key %q: %v", k, err))
		}
		if _, both := req.Set[k]; both {
			return nil, refuse(CodeInvalid, model.KindWorkload, key, "labels", fmt.Sprintf("label %q is both set and removed; say one", k))
		}
	}
	w := proto.Clone(old).(*sdnv1.Workload)
	labels := maps.Clone(old.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	for _, k := range slices.Sorted(maps.Keys(req.Set)) {
		labels[k] = req.Set[k]
	}
	for _, k := range req.Remove {
		delete(labels, k)
	}
	if len(labels) == 0 {
		labels = nil
	}
	w.Labels = labels
	d := labelDetails(old.Labels, w.Labels)
	if len(d) == 0 {
		return &Result{Revision: e.tx.Meta().Revision, Workload: old}, nil
	}
	if err := e.putWorkload(sdnv1.ChangeOp_CHANGE_OP_UPDATE, w, d); err != nil {
		return nil, ioError(err)
	}
	res, verr := e.finish()
	if verr != nil {
		return nil, verr
	}
	res.Workload = w
	return res, nil
}
