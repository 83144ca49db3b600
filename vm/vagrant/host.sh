#!/usr/bin/env bash
# vm/vagrant/host.sh: the host side of the Vagrant lab on a machine like the
# project's (no systemd as PID 1, no udev, no network but the package
# archive): libvirt started by hand inside a network namespace of its own.
# `make vm-lab` and `make vm-lab-down` call it (vm/vagrant/lab.sh); docs/vagrant.md.
#
#   host.sh remember  note /dev/kvm's owner and mode, before anything is
#                   installed (udev's postinst, which libvirt's packages bring,
#                   changes them on install)
#   host.sh up      start (or keep) the namespace, virtlogd, libvirtd, the pool
#   host.sh down    stop and remove what `up` started, and put /dev/kvm back
#   host.sh env     print the environment vagrant needs here, as shell exports
#   host.sh run CMD...   run CMD inside the namespace with that environment
#
# What `up` changes, each recorded in $SDN_VM_STATE (default /var/lib/sdn-vm)
# so that `down` undoes exactly that:
#   - network namespace $SDN_VM_NETNS (default sdn-vm): libvirtd, its dnsmasq,
#     the VMs' bridges and vagrant's SSH to the VMs all live in it, so no
#     link, address, route or firewall rule appears in the root namespace;
#   - virtlogd and libvirtd, started as daemons inside it (PID 1 is not
#     systemd here, so nothing else starts them);
#   - /dev/kvm: group kvm, mode 0660 (its owner and mode before, from
#     `remember` or else from `up`, are kept in $SDN_VM_STATE/kvm.mode). Without udev nobody sets them, and libvirt
#     then finds the QEMU capabilities it cached stale and probes QEMU
#     again on every call (about 100 s each). The VMs use TCG all the same
#     unless the kernel has kvm_intel or kvm_amd (the Vagrantfile decides);
#   - a libvirt storage pool sdn-vm in $SDN_VM_STATE/pool, and VAGRANT_HOME
#     in $SDN_VM_STATE/vagrant.d: the libvirt-qemu user must read the VMs'
#     disks and the box's kernel and initrd, and cannot enter /root.
# A libvirtd that was already running in the namespace (not started by us)
# is used as it is and left alone by `down`; one running elsewhere is an
# error. `down` removes only the lab's domains (named $SDN_VM_PREFIX*) and
# vagrant-libvirt's networks of the lab (sdn-vm-mgmt, sdn-underlay).
set -euo pipefail

state="${SDN_VM_STATE:-/var/lib/sdn-vm}"
ns="${SDN_VM_NETNS:-sdn-vm}"
pool=sdn-vm
prefix=sdn-vm-
nets="sdn-vm-mgmt sdn-underlay"
log() { echo "vm-host: $*" >&2; }
die() { log "$*"; exit 1; }

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
pidof_file() { cat "$1" 2>/dev/null || true; }

# The environment vagrant needs on this machine (`host.sh env` prints it).
vagrant_env() {
	cat <<ENV
export VAGRANT_HOME=$state/vagrant.d
export VAGRANT_DEFAULT_PROVIDER=libvirt
export LIBVIRT_DEFAULT_URI=qemu:///system
export SDN_VM_BOX=\${SDN_VM_BOX:-sdn-local}
export SDN_VM_POOL=$pool
export SDN_VM_PREFIX=$prefix
export SDN_VM_MGMT_NET=\${SDN_VM_MGMT_NET:-198.19.121.0/24}
export SDN_VM_MGMT_MODE=none
export VAGRANT_CHECKPOINT_DISABLE=1
ENV
}

up_netns() {
	if [ -e "/run/netns/$ns" ]; then
		return
	fi
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	touch "$state/netns.created"
	log "network namespace $ns"
}

# kvm_remember notes /dev/kvm's owner and mode unless noted already.
kvm_remember() {
	[ -c /dev/kvm ] || return 0
	mkdir -p "$state"
	if [ ! -f "$state/kvm.mode" ]; then
		stat -c '%U:%G %a' /dev/kvm >"$state/kvm.mode"
	fi
}

# kvm_open lets the kvm group use /dev/kvm, remembering how it was.
kvm_open() {
	[ -c /dev/kvm ] || return 0
	kvm_remember
	chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
}

kvm_restore() {
	[ -f "$state/kvm.mode" ] || return 0
	local owner mode
	read -r owner mode <"$state/kvm.mode"
	if [ -c /dev/kvm ]; then
		chown "$owner" /dev/kvm && chmod "$mode" /dev/kvm
		log "/dev/kvm back to $owner $mode"
	fi
	rm -f "$state/kvm.mode"
}

# daemon NAME starts NAME -d in the namespace unless it runs, recording
# that we started it.
daemon() {
	local name="$1" pidfile="/run/$1.pid"
	local pid
	pid="$(pidof_file "$pidfile")"
	if alive "$pid"; then
		if [ "$(readlink "/proc/$pid/ns/net")" != "$(ip netns exec "$ns" readlink /proc/self/ns/net)" ]; then
			# Its networks and dnsmasq would land in that namespace, and
			# vagrant here could not reach the VMs.
			die "a $name not started by the lab runs outside netns $ns (pid $pid): stop it first"
		fi
		if [ ! -f "$state/$name.started" ]; then
			log "$name already runs in netns $ns (pid $pid), not started by us: using it, down leaves it"
		fi
		return
	fi
	ip netns exec "$ns" "$name" -d -p "$pidfile"
	echo "$(pidof_file "$pidfile")" >"$state/$name.started"
	log "$name started in netns $ns (pid $(pidof_file "$pidfile"))"
}

wait_libvirt() {
	local i
	for i in $(seq 1 120); do
		if virsh -c qemu:///system version >/dev/null 2>&1; then
			return
		fi
		sleep 0.5
	done
	die "libvirtd does not answer on qemu:///system after 60 s"
}

up_pool() {
	mkdir -p "$state/pool"
	chmod 0755 "$state" "$state/pool"
	if ! virsh -q pool-info "$pool" >/dev/null 2>&1; then
		virsh -q pool-define-as "$pool" dir --target "$state/pool" >/dev/null
		log "storage pool $pool in $state/pool"
	fi
	if [[ "$(virsh -q pool-info "$pool")" != *"State:"*running* ]]; then
		virsh -q pool-start "$pool" >/dev/null
	fi
}

up() {
	[ "$(id -u)" = 0 ] || die "must run as root (network namespace, libvirtd, /dev/kvm)"
	for c in libvirtd virtlogd virsh vagrant qemu-system-x86_64; do
		command -v "$c" >/dev/null || die "$c missing: run make vm-lab-deps"
	done
	mkdir -p "$state/vagrant.d"
	chmod 0755 "$state" "$state/vagrant.d"
	up_netns
	kvm_open
	daemon virtlogd
	daemon libvirtd
	wait_libvirt
	up_pool
}

# destroy_domains removes the lab's domains and networks that `vagrant
# destroy` left.
destroy_domains() {
	local d n
	for d in $(virsh -q list --all --name 2>/dev/null | grep "^$prefix"); do
		virsh -q destroy "$d" >/dev/null 2>&1 || true
		virsh -q undefine "$d" --remove-all-storage --nvram >/dev/null 2>&1 ||
			virsh -q undefine "$d" >/dev/null 2>&1 || true
		log "removed domain $d"
	done
	for n in $nets; do
		virsh -q net-info "$n" >/dev/null 2>&1 || continue
		virsh -q net-destroy "$n" >/dev/null 2>&1 || true
		virsh -q net-undefine "$n" >/dev/null 2>&1 || true
		log "removed network $n"
	done
}

down_pool() {
	local v
	virsh -q pool-info "$pool" >/dev/null 2>&1 || return 0
	for v in $(virsh -q vol-list "$pool" 2>/dev/null | awk '{print $1}'); do
		virsh -q vol-delete "$v" --pool "$pool" >/dev/null 2>&1 || true
	done
	virsh -q pool-destroy "$pool" >/dev/null 2>&1 || true
	virsh -q pool-undefine "$pool" >/dev/null 2>&1 || true
	log "removed storage pool $pool"
}

stop_daemon() {
	local name="$1" pid
	[ -f "$state/$name.started" ] || return 0
	pid="$(cat "$state/$name.started")"
	if alive "$pid" && grep -q "$name" "/proc/$pid/cmdline" 2>/dev/null; then
		kill "$pid"
		for _ in $(seq 1 50); do alive "$pid" || break; sleep 0.2; done
		alive "$pid" && kill -9 "$pid"
		log "$name stopped (pid $pid)"
	fi
	rm -f "$state/$name.started" "/run/$name.pid"
}

down() {
	[ "$(id -u)" = 0 ] || die "must run as root"
	if [ -f "$state/libvirtd.started" ] && virsh -c qemu:///system version >/dev/null 2>&1; then
		destroy_domains
		down_pool
	fi
	stop_daemon libvirtd
	stop_daemon virtlogd
	if [ -f "$state/netns.created" ]; then
		# Whatever libvirt left in the namespace (dnsmasq, a qemu) ends with it.
		local p
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
		ip netns del "$ns" 2>/dev/null || true
		rm -f "$state/netns.created"
		log "network namespace $ns removed"
	fi
	kvm_restore
	rm -rf "$state/vagrant.d" "$state/pool" "$state/console" "$state/ssh-config"
	rmdir "$state" 2>/dev/null || true
}

case "${1:-}" in
remember) kvm_remember ;;
up) up ;;
down) down ;;
env) vagrant_env ;;
run)
	shift
	eval "$(vagrant_env)"
	exec ip netns exec "$ns" "$@"
	;;
*) die "usage: host.sh up|down|env|run CMD..." ;;
esac
