package command

// FuzzDecode feeds the envelope and batch decoders (the FSM's input: every
// raft log entry goes through them) arbitrary bytes. `make fuzz` runs it
// for long, `make test` briefly; the corpus is under testdata/fuzz/FuzzDecode.

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// realCommands are one command of each type, as the servers encode them.
func realCommands(t testing.TB) [][]byte {
	t.Helper()
	msgs := []struct {
		typ Type
		msg proto.Message
	}{
		{ApplyConfig, &sdnv1.ApplyRequest{
			Cluster:   &sdnv1.ClusterSettings{Cidr: "10.128.0.0/14", HostPrefix: 23, ServiceCidr: "172.30.0.0/16", VxlanPort: 4789, Isolation: sdnv1.IsolationMode_ISOLATION_MODE_MULTITENANT},
			Networks:  []*sdnv1.Network{{Name: "infra", Admin: true, Labels: map[string]string{"env": "prod"}}, {Name: "proj1"}},
			Workloads: []*sdnv1.Workload{{Name: "db1", Network: "proj1", Node: "host1", Ip: "10.128.0.10", Mac: "0a:58:0a:80:00:0a", Labels: map[string]string{"role": "db"}}},
			Prune:     true,
		}},
		{Delete, &sdnv1.DeleteRequest{Kind: "network", Name: "proj1"}},
		{RegisterNode, &sdnv1.RegisterNodeRequest{Name: "host1", UnderlayIp: "198.18.0.1", UnderlayMtu: 1500}},
		{RemoveNode, &sdnv1.RemoveNodeRequest{Name: "host1"}},
		{AttachWorkload, &sdnv1.AttachWorkloadRequest{Workload: &sdnv1.Workload{Network: "proj1", Name: "web1", Node: "host1", Labels: map[string]string{"app": "web"}}}},
		{DetachWorkload, &sdnv1.DetachWorkloadRequest{Network: "proj1", Name: "web1", ContainerId: "0123456789ab", Ifname: "eth0"}},
		{Compact, &sdnv1.CompactRequest{Revision: 9}},
		{SetNodeLiveness, &sdnv1.SetNodeLivenessRequest{Name: "host1", Down: true, AtUnixMs: 1767225600000}},
		{DrainNode, &sdnv1.DrainNodeRequest{Name: "host1", Drain: true}},
		{ReleaseNode, &sdnv1.ReleaseNodeRequest{Name: "host1", DownSinceUnixMs: 1767225600000}},
		{InitCluster | IgnoreUnknownFlag, &sdnv1.InitClusterRequest{ClusterId: "0123456789abcdef"}},
		{RevokeCertificate | IgnoreUnknownFlag, &sdnv1.RevokedCertificate{Serial: "1f", Identity: "agent host1", Reason: "host retired", RevokedUnixMs: 1767225600000, NotAfterUnixMs: 1798761600000, RevokedBy: "admin"}},
	}
	var out [][]byte
	for _, m := range msgs {
		b, err := Encode(m.typ, m.msg)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// FuzzDecode checks, for any bytes: Decode and DecodeBatch never panic;
// Decode accepts every format 1 header and a format 2 one only with its
// checksum; an accepted envelope re-encodes to the same bytes; DecodeBatch agrees with
// protobuf itself (a `repeated bytes commands = 1` message) on whether a
// payload is valid and what commands it holds.
func FuzzDecode(f *testing.F) {
	cmds := realCommands(f)
	for _, c := range cmds {
		f.Add(c)
	}
	f.Add(EncodeBatch(cmds))
	f.Add(EncodeBatch(cmds[2:4]))
	f.Add(EncodeBatch([][]byte{EncodeBatch(cmds[:1])}))
	f.Add(EncodeRaw(Type(99)|IgnoreUnknownFlag, []byte{0x0a, 0x01, 'x'}))
	f.Add([]byte{})
	f.Add([]byte{1, 0})
	f.Add([]byte{2, 0, 1})
	batch := newBatchDecoder(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		typ, payload, err := Decode(data)
		// Format 1 has no checksum: any 3-byte header decodes. Format 2
		// decodes only with its checksum, so what decodes re-encodes to
		// the same bytes in either format.
		format1 := len(data) >= header1Len && data[0] == byte(Format1)
		switch {
		case err != nil && format1:
			t.Fatalf("Decode refused a well-formed format 1 envelope: %v", err)
		case err == nil:
			_ = typ.String()
			if re := FormatOf(data).EncodeRaw(typ, payload); !bytes.Equal(re, data) {
				t.Fatalf("envelope %x re-encodes as %x", data, re)
			}
		default:
			payload = data // the decoder below gets every input
		}
		got, err := DecodeBatch(payload)
		want, werr := batch(payload)
		if (err == nil) != (werr == nil) {
			t.Fatalf("DecodeBatch(%x): error %v; protobuf says %v", payload, err, werr)
		}
		if err != nil {
			return
		}
		if len(got) != len(want) {
			t.Fatalf("DecodeBatch(%x): %d commands; protobuf finds %d", payload, len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("DecodeBatch(%x): command %d is %x; protobuf says %x", payload, i, got[i], want[i])
			}
		}
		_, re, err := Decode(EncodeBatch(got))
		if err != nil {
			t.Fatal(err)
		}
		if again, err := DecodeBatch(re); err != nil || len(again) != len(got) {
			t.Fatalf("re-encoded batch decodes to %d commands (%v), want %d", len(again), err, len(got))
		}
	})
}

// newBatchDecoder returns a decoder of Batch payloads made by protobuf
// from the message the command's doc declares, independent of DecodeBatch.
func newBatchDecoder(t testing.TB) func([]byte) ([][]byte, error) {
	t.Helper()
	fdp := &descriptorpb.FileDescriptorProto{
		Name:    proto.String("fuzz_batch.proto"),
		Package: proto.String("fuzz"),
		Syntax:  proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{{
			Name: proto.String("Batch"),
			Field: []*descriptorpb.FieldDescriptorProto{{
				Name: proto.String("commands"), JsonName: proto.String("commands"), Number: proto.Int32(1),
				Label: descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum(),
				Type:  descriptorpb.FieldDescriptorProto_TYPE_BYTES.Enum(),
			}},
		}},
	}
	fd, err := protodesc.NewFile(fdp, nil)
	if err != nil {
		t.Fatal(err)
	}
	md := fd.Messages().Get(0)
	field := md.Fields().Get(0)
	return func(b []byte) ([][]byte, error) {
		m := dynamicpb.NewMessage(md)
		if err := proto.Unmarshal(b, m); err != nil {
			return nil, err
		}
		var out [][]byte
		list := m.Get(field).List()
		for i := range list.Len() {
			out = append(out, list.Get(i).Bytes())
		}
		return out, nil
	}
}
