#!/usr/bin/env bash
# vm/vagrant/lab.sh up|down|matrix|ssh NODE: the Vagrant lab on a machine of the
# project's kind, unattended (`make vm-lab`, `make vm-lab-down`, `make
# vm-ssh`; docs/vagrant.md). Run from the repository's top, as root, after
# `make vm-stage` (binaries and TLS files in .vm-lab/).
#
# up:   the image (vm/build-image.sh, cached) → the local box (box.sh, cached)
#       → libvirt in its network namespace (host.sh up) → the box added to
#       Vagrant if it is not the current one → `vagrant up` (new VMs are
#       created and provisioned; running ones are kept as they are: Vagrant
#       provisions a machine only when it creates it) → `vagrant provision`
#       of any host whose sdnd or workloads are missing (a provisioning that
#       failed or was interrupted) → the matrix (bin/sdnvm over `vagrant
#       ssh-config`) → how to log in.
# down: `vagrant destroy`, then host.sh down (domains, networks, pool,
#       daemons, namespace, /dev/kvm), and .vm-lab/ and .vagrant/. The cache
#       (image, box) stays for the next up.
#
# SDN_NODES and SDN_SERVERS (1, or 3: host1..host3 a raft cluster) are the
# Vagrantfile's; SDN_VM_CACHE the cache
# (default ~/.cache/sdn-vm); SDN_VM_STATE, SDN_VM_NETNS host.sh's.
set -euo pipefail

top="$(pwd)"
here="$top/vm/vagrant"
cache="${SDN_VM_CACHE:-$HOME/.cache/sdn-vm}"
state="${SDN_VM_STATE:-/var/lib/sdn-vm}"
box_name=sdn-local
log() { echo "vm-lab: $*" >&2; }
die() { log "$*"; exit 1; }
secs() { echo $(( $(date +%s) - $1 )); }

[ -f "$top/Vagrantfile" ] || die "run from the repository's top (no Vagrantfile in $top)"

# vagrant runs every Vagrant command in the namespace with the lab's
# environment (host.sh run).
vagrant_ns() { "$here/host.sh" run vagrant "$@"; }

# ensure_box adds the box made from the current image unless Vagrant has
# it; the image key it was made from is kept beside VAGRANT_HOME.
ensure_box() {
	local img box key mark
	img="$(bash "$top/vm/build-image.sh" | tail -n 1)"
	box="$("$here/box.sh" "$img" | tail -n 1)"
	key="$(basename "$box" .box)"
	mark="$state/vagrant.d/$box_name.from"
	if [ -f "$mark" ] && [ "$(cat "$mark")" = "$key" ] && [ -d "$state/vagrant.d/boxes/$box_name" ]; then
		log "box $box_name: $key (kept)"
		return
	fi
	local t
	t=$(date +%s)
	vagrant_ns box add --force --name "$box_name" "$box" >/dev/null
	echo "$key" >"$mark"
	log "box $box_name: added $box in $(secs "$t") s"
	# Boxes of older images only take room in the cache.
	find "$cache" -maxdepth 1 -name 'box-*.box' ! -name "$key.box" -delete
}

# provisioned HOST reports whether vm/provision.sh finished on HOST: sdnd
# runs and its workloads are recorded.
provisioned() {
	local i="${1#host}"
	"$here/host.sh" run ssh -F "$state/ssh-config" -o BatchMode=yes -o LogLevel=ERROR "$1" \
		"systemctl -q is-active sdnd && ls /var/lib/sdn-lab/host$i/workloads/*.json" >/dev/null 2>&1
}

# repair provisions every host whose provisioning did not finish: the
# servers first, concurrently (several elect a leader only together), then
# the agents one by one.
repair() {
	local i p servers="${SDN_SERVERS:-1}" pids=() rc=0
	vagrant_ns ssh-config >"$state/ssh-config"
	for i in $(seq 1 "${SDN_NODES:-3}"); do
		provisioned "host$i" && continue
		log "host$i: not provisioned (or it failed): vagrant provision host$i"
		if [ "$i" -le "$servers" ]; then
			vagrant_ns provision "host$i" &
			pids+=($!)
			continue
		fi
		for p in "${pids[@]}"; do wait "$p" || rc=$?; done
		pids=()
		[ "$rc" = 0 ] || return "$rc"
		vagrant_ns provision "host$i"
	done
	for p in "${pids[@]}"; do wait "$p" || rc=$?; done
	return "$rc"
}

# matrix prints the connectivity matrix from the host, over vagrant's SSH
# configuration.
matrix() {
	[ -f "$state/ssh-config" ] || vagrant_ns ssh-config >"$state/ssh-config"
	"$here/host.sh" run "$top/bin/sdnvm" matrix --ssh-config "$state/ssh-config" \
		--dir "$top/.vm-lab/lab" --name "${SDN_VM_LAB:-vagrant}"
}

up() {
	[ "$(id -u)" = 0 ] || die "must run as root"
	[ -x "$top/.vm-lab/bin/sdnd" ] || die ".vm-lab/bin/sdnd missing: run make vm-stage"
	local t0
	t0=$(date +%s)
	"$here/host.sh" up
	ensure_box
	mkdir -p "$state/console"
	log "vagrant up (${SDN_NODES:-3} nodes, ${SDN_SERVERS:-1} server(s)); consoles in $state/console"
	export SDN_VM_CONSOLE_DIR="$state/console"
	# A failed provisioning fails `vagrant up`; repair provisions it again.
	vagrant_ns up || log "vagrant up failed; provisioning again what did not finish"
	repair
	log "up in $(secs "$t0") s"
	echo
	local rc=0
	matrix || rc=$?
	hint
	return "$rc"
}

hint() {
	local d=/var/lib/sdn-lab
	cat <<HINT

Log in to a host (as root, from the repository's top):
    make vm-ssh NODE=host1        (vm/vagrant/host.sh run vagrant ssh host1)
which is, spelled out:
    ip netns exec ${SDN_VM_NETNS:-sdn-vm} env $("$here/host.sh" env | sed -n 's/^export \(VAGRANT_HOME=.*\|VAGRANT_DEFAULT_PROVIDER=.*\)$/\1/p' | tr '\n' ' ')vagrant ssh host1
Inside, as root: ovs-dpctl show; ip netns; systemctl status sdnd;
    /opt/sdn/bin/sdnctl --server unix://$d/host1/api.sock --tls-ca $d/tls/ca.crt --tls-cert $d/tls/client-admin.crt --tls-key $d/tls/client-admin.key get workloads
    (cluster members: the raft servers, host1..host${SDN_SERVERS:-1}; on a server hostK, its own socket $d/hostK/api.sock)
The matrix again: make vm-matrix; make vm-lab keeps the VMs. Remove everything: make vm-lab-down.
HINT
}

down() {
	[ "$(id -u)" = 0 ] || die "must run as root"
	local t0
	t0=$(date +%s)
	if [ -f "$state/libvirtd.started" ] && [ -d "$top/.vagrant" ]; then
		vagrant_ns destroy -f || log "vagrant destroy failed; host.sh down removes the domains"
	fi
	"$here/host.sh" down
	rm -rf "$top/.vm-lab" "$top/.vagrant"
	log "down in $(secs "$t0") s"
}

case "${1:-}" in
up) up ;;
down) down ;;
matrix) matrix ;;
ssh)
	shift
	exec "$here/host.sh" run vagrant ssh "${1:-host1}"
	;;
*) die "usage: lab.sh up|down|matrix|ssh [NODE]" ;;
esac
