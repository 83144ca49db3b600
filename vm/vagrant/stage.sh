#!/usr/bin/env bash
# vm/vagrant/stage.sh: fill .vm-lab/, what the Vagrantfile copies into the
# VMs (`make vm-stage`; run from the repository's top):
#
#   .vm-lab/bin/   sdnd, sdnctl, sdn (the CNI plugin), sdnlab and sdnprobe,
#                  built for the VMs (linux, SDN_VM_GOARCH, default amd64),
#                  so a laptop of another system or architecture stages them
#                  the same way
#   .vm-lab/lab/   the lab as `sdnlab prepare` makes it for VM labs
#                  (lab.json, hcl/ from examples/, tls/: the lab's CA and
#                  certificates, the same code as the netns lab's); existing
#                  certificates are kept, so adding nodes keeps the CA
#   .vm-lab/vm/    what goes into every VM of it: lab.json, hcl/, and tls/
#                  without the CA's key
#
# SDN_NODES (default 3), SDN_SERVERS (default 1: host1; 3: host1..host3,
# each with a server certificate for its address) and SDN_VM_LAB (the lab's
# name, default vagrant, whose underlay is lab.Subnet(NAME):
# 198.18.190.0/24) as in the Vagrantfile.
set -euo pipefail

nodes="${SDN_NODES:-3}"
servers="${SDN_SERVERS:-1}"
name="${SDN_VM_LAB:-vagrant}"
arch="${SDN_VM_GOARCH:-amd64}"
go="${GO:-go}"
out=.vm-lab
log() { echo "vm-stage: $*" >&2; }

mkdir -p "$out/bin" bin
build() { GOOS=linux GOARCH="$arch" CGO_ENABLED=0 "$go" build ${LDFLAGS:+-ldflags "$LDFLAGS"} "$@"; }
build -o "$out/bin/" ./sdnd ./sdnctl ./integration/cmd/sdnlab ./integration/cmd/sdnprobe
build -o "$out/bin/sdn" ./cni
log "binaries for linux/$arch in $out/bin"

"$go" build -o bin/ ./integration/cmd/sdnlab ./integration/cmd/sdnvm
bin/sdnlab prepare --name "$name" --dir "$out/lab" --hosts "$nodes" --servers "$servers" >&2

rm -rf "$out/vm.new"
mkdir -p "$out/vm.new"
cp -a "$out/lab/lab.json" "$out/lab/hcl" "$out/lab/tls" "$out/vm.new/"
rm -f "$out/vm.new/tls/ca.key"
rm -rf "$out/vm"
mv "$out/vm.new" "$out/vm"
