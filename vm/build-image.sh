#!/usr/bin/env bash
# vm/build-image.sh: build the Debian 12 VM image the VM labs boot (the QEMU
# harness in integration/vm and the Vagrant box), or reuse the cached one.
#
#   vm/build-image.sh            build or reuse; the last line of stdout is the image directory
#   vm/build-image.sh --print    print the image directory it would use, build nothing
#                                (exit 1 when that image is not built yet)
#
# As root, unattended, idempotent. Needs mmdebstrap, e2fsprogs and qemu-utils
# (`make vm-deps`). The packages come from the apt sources this machine uses
# (/etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list; override
# with SDN_VM_MIRROR, a one-line "deb URI suite components" string or several
# separated by "|").
#
# Output, in $SDN_VM_CACHE (default ~/.cache/sdn-vm) under image-<key>/, where
# <key> hashes every input (this script, the package list, the sources, the
# baked keys):
#   disk.qcow2   the root file system (ext4 labelled sdnroot, no partition table)
#   vmlinuz      the kernel, for direct kernel boot (-kernel)
#   initrd.img   its initrd (-initrd)
#   cmdline      the kernel command line to boot it with (root=LABEL=sdnroot ...)
#   manifest     the installed packages and versions, and the build time
# $SDN_VM_CACHE/image is a symlink to the newest image directory.
#
# The guest configures itself at boot from its kernel command line
# (vm/guest/sdn-vm-setup, run before networking and sshd):
#   sdn.hostname=NAME           the host name
#   sdn.ssh=BASE64              a public key line (base64 of it) appended to root's authorized_keys
#   sdn.net=MAC,ADDR/LEN[,GW]   a static address on the interface with that MAC (repeatable)
# Interfaces without a sdn.net take DHCP (systemd-networkd), as Vagrant's
# management network wants. SSH host keys are generated at first boot, not baked.
# SDN_VM_AUTHORIZED_KEYS=FILE bakes the keys in FILE into root's
# authorized_keys (the Vagrant box uses that for Vagrant's key).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cache="${SDN_VM_CACHE:-$HOME/.cache/sdn-vm}"
suite=bookworm
# wrk: the servicesvm bench's load generator (bench/suites/servicesvm*.go).
packages=(systemd-sysv udev dbus kmod procps linux-image-amd64 openvswitch-switch iproute2 iperf3
	openssh-server iputils-ping nftables ethtool busybox-static wrk)
log() { echo "build-image: $*" >&2; }

# mirrors prints the apt sources to build from, one "deb URI suite components" a line.
mirrors() {
	if [ -n "${SDN_VM_MIRROR:-}" ]; then
		tr '|' '\n' <<<"$SDN_VM_MIRROR"
		return
	fi
	local f=/etc/apt/sources.list.d/debian.sources
	if [ -f "$f" ]; then
		# deb822: one stanza per URI; keep Debian's own suites (bookworm*).
		awk -v suite="$suite" '
			/^URIs:/ {uri=$2} /^Suites:/ {s=""; for (i=2;i<=NF;i++) s=s" "$i}
			/^Components:/ {c=""; for (i=2;i<=NF;i++) c=c" "$i}
			/^$/ {flush()} END {flush()}
			function flush() { if (uri!="") { n=split(s, a, " "); for (i=1;i<=n;i++) if (index(a[i], suite)==1) print "deb " uri " " a[i] c }; uri=""; s=""; c="" }
		' "$f"
		return
	fi
	grep -E "^deb [^ ]+ $suite" /etc/apt/sources.list
}

keyfile="${SDN_VM_AUTHORIZED_KEYS:-}"
key=$( {
	cat "$0" "$here"/guest/*
	printf '%s\n' "${packages[@]}"
	mirrors
	if [ -n "$keyfile" ]; then cat "$keyfile"; fi
} | sha256sum | cut -c1-16)
out="$cache/image-$key"

if [ "${1:-}" = "--print" ]; then
	echo "$out"
	[ -f "$out/disk.qcow2" ]
	exit
fi
if [ -f "$out/disk.qcow2" ]; then
	log "cached: $out"
	ln -sfn "image-$key" "$cache/image"
	echo "$out"
	exit 0
fi

[ "$(id -u)" = 0 ] || { log "must run as root (mmdebstrap --mode=root, mkfs.ext4 -d)"; exit 1; }
for c in mmdebstrap mkfs.ext4 qemu-img; do
	command -v "$c" >/dev/null || { log "$c missing: run make vm-deps"; exit 1; }
done
mkdir -p "$cache"
# One build at a time per cache (the Vagrant box and the test may both ask).
exec 9>"$cache/.build.lock"
log "waiting for the build lock $cache/.build.lock"
flock 9
if [ -f "$out/disk.qcow2" ]; then
	log "built by another run meanwhile: $out"
	echo "$out"
	exit 0
fi

work="$(mktemp -d "$cache/build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
root="$work/root"
start=$(date +%s)

mapfile -t srcs < <(mirrors)
[ "${#srcs[@]}" -gt 0 ] || { log "no Debian $suite apt source found"; exit 1; }
log "mmdebstrap $suite from: ${srcs[*]}"
mmdebstrap --mode=root --variant=apt --format=directory \
	--include="$(IFS=,; echo "${packages[*]}")" \
	--customize-hook="\"$here/guest/customize\" \"\$1\" \"$keyfile\"" \
	"$suite" "$root" "${srcs[@]}" >&2
log "root file system in $(( $(date +%s) - start )) s"

mkdir -p "$work/out"
cp "$root"/boot/vmlinuz-* "$work/out/vmlinuz"
cp "$root"/boot/initrd.img-* "$work/out/initrd.img"
echo "root=LABEL=sdnroot rw console=ttyS0,115200 net.ifnames=0 panic=-1 quiet" >"$work/out/cmdline"
{
	echo "built $(date -u +%FT%TZ) in $(( $(date +%s) - start )) s by vm/build-image.sh, key $key"
	chroot "$root" dpkg-query -W -f '${Package} ${Version}\n'
} >"$work/out/manifest"

# The file system: the root's size plus 1 GiB free (binaries, logs, state).
mb=$(( $(du -sm "$root" | cut -f1) + 1024 ))
log "mkfs.ext4 -d ($mb MiB) and qemu-img convert"
mkfs.ext4 -q -F -L sdnroot -d "$root" "$work/disk.raw" "${mb}M"
qemu-img convert -f raw -O qcow2 "$work/disk.raw" "$work/out/disk.qcow2"
rm -f "$work/disk.raw"

mv "$work/out" "$out"
ln -sfn "image-$key" "$cache/image"
log "built $out in $(( $(date +%s) - start )) s ($(du -sh "$out/disk.qcow2" | cut -f1) qcow2)"
echo "$out"
