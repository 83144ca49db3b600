// Package proto holds the sdn gRPC API definitions; the generated Go code
// lives in proto/sdn/v1 (package sdnv1). Run `make proto` to regenerate.
package proto

//go:generate protoc -I . --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative sdn/v1/*.proto
