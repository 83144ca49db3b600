// Package sdnv1 is the generated Go code of the sdn v1 gRPC API
// (proto/sdn/v1/*.proto): the config, node, workload, status, cluster and
// snapshot services and their messages. Do not edit the .pb.go files; run `make proto`.
package sdnv1
