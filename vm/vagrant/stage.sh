#!/usr/bin/env bash
# vm/vagrant/stage.sh: fill .vm-lab/, what the Vagrantfile copies into the
# VMs (`make vm-stage`; run from the repository's top):
#
#   .vm-lab/bin/   sdnd, sdnctl, sdn (the CNI plugin) and sdnprobe, built for
#                  the VMs (linux, SDN_VM_GOARCH, default amd64), so a laptop
#                  of another system or architecture stages them the same way
#   .vm-lab/tls/   the lab's CA and certificates (sdnctl tls, package pki):
#                  server-nodeK for the servers (valid for their underlay
#                  address), agent-nodeI for every node, client-admin for
#                  sdnctl. Certificates that exist are kept, missing ones
#                  issued, so adding nodes keeps the CA.
#
# SDN_NODES, SDN_SERVERS and SDN_VM_UNDERLAY as in the Vagrantfile. SDNCTL
# is an sdnctl that runs here (default bin/sdnctl, which `make build` makes).
set -euo pipefail

nodes="${SDN_NODES:-3}"
servers="${SDN_SERVERS:-1}"
underlay="${SDN_VM_UNDERLAY:-198.19.122}"
arch="${SDN_VM_GOARCH:-amd64}"
sdnctl="${SDNCTL:-bin/sdnctl}"
go="${GO:-go}"
out=.vm-lab
log() { echo "vm-stage: $*" >&2; }

mkdir -p "$out/bin"
GOOS=linux GOARCH="$arch" CGO_ENABLED=0 "$go" build ${LDFLAGS:+-ldflags "$LDFLAGS"} -o "$out/bin/" ./sdnd ./sdnctl ./integration/cmd/sdnprobe
GOOS=linux GOARCH="$arch" CGO_ENABLED=0 "$go" build ${LDFLAGS:+-ldflags "$LDFLAGS"} -o "$out/bin/sdn" ./cni
log "binaries for linux/$arch in $out/bin"

tls="$out/tls"
if [ ! -f "$tls/ca.crt" ]; then
	"$sdnctl" tls init --dir "$tls" --clients admin >/dev/null
	log "CA in $tls"
fi
issue() { # ROLE NAME [HOST]
	[ -f "$tls/$1-$2.crt" ] && return
	"$sdnctl" tls issue --dir "$tls" --role "$1" --name "$2" ${3:+--host "$3"} >/dev/null
	log "issued $1-$2${3:+ for $3}"
}
for k in $(seq 1 "$servers"); do
	issue server "node$k" "$underlay.$((10 + k))"
done
for i in $(seq 1 "$nodes"); do
	issue agent "node$i"
done
