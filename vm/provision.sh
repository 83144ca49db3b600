#!/usr/bin/env bash
# vm/provision.sh: make this VM one host of a VM lab. Run as root inside the
# VM, by the QEMU harness (integration/vm) and by the Vagrantfile's shell
# provisioner alike, so both labs set hosts up with the same code (and, via
# `sdnlab node-args` / `sdnlab node-attach`, the same Go as the netns lab:
# integration/lab NodeArgs, AttachHost).
#
#   vm/provision.sh INDEX HOSTS [IFACE]
#
#   INDEX   this host's index, 1..HOSTS; host1 is the server (and an agent),
#           bootstraps the cluster and applies DIR/hcl; provision host1 first
#   HOSTS   the number of hosts
#   IFACE   the underlay interface (default eth0); its address must be
#           lab.Subnet(NAME)+INDEX (`sdnlab prepare` prints them; 198.18.44.I
#           for the name vm), as host1's server certificate names that address
#
# Environment:
#   SDN_BIN       sdnd, sdnctl, sdn (the CNI plugin) and sdnlab (default /opt/sdn/bin)
#   SDN_LAB_DIR   the lab's files, as `sdnlab prepare --dir D` made them on the
#                 build host (D/lab.json, D/tls/, D/hcl/), copied or synced in
#                 (default /var/lib/sdn-lab); the VM adds hostI/ there
#   SDN_LAB_NAME  the lab's name (default vm)
#   SDN_DATAPATH  system (default: OVS's kernel datapath) or netdev
#
# What it does, idempotently: loads openvswitch and starts OVS, writes and
# (re)starts sdnd.service (Restart=always) with the flags `sdnlab node-args`
# prints, on host1 waits for the API and applies DIR/hcl, then attaches one
# workload per network (network namespaces <name>-hostI-<network>) with the
# CNI plugin. The last line of stdout is the host's workloads as JSON.
set -euo pipefail
index="${1:?usage: provision.sh INDEX HOSTS [IFACE]}" hosts="${2:?usage: provision.sh INDEX HOSTS [IFACE]}"
iface="${3:-eth0}"
bin="${SDN_BIN:-/opt/sdn/bin}" dir="${SDN_LAB_DIR:-/var/lib/sdn-lab}" name="${SDN_LAB_NAME:-vm}"
datapath="${SDN_DATAPATH:-system}"
log() { echo "provision host$index: $*" >&2; }
waitfor() { # waitfor SECONDS WHAT CMD...
	local t="$1" what="$2"; shift 2
	for _ in $(seq 1 "$t"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
	log "timed out after ${t}s waiting for $what"; return 1
}

[ "$datapath" = system ] && modprobe openvswitch
systemctl enable --now openvswitch-switch >/dev/null 2>&1
waitfor 60 "Open vSwitch" ovs-vsctl --timeout=5 show

lab=(--name "$name" --dir "$dir" --bin "$bin" --hosts "$hosts" --index "$index")
role=()
[ "$index" = 1 ] && role=(--server)
args=$("$bin/sdnlab" node-args "${lab[@]}" "${role[@]}" --iface "$iface" --datapath "$datapath")
unit=/etc/systemd/system/sdnd.service
new=$(cat <<UNIT
[Unit]
Description=sdn daemon (host$index of VM lab $name; vm/provision.sh)
After=openvswitch-switch.service network-online.target
Requires=openvswitch-switch.service

[Service]
ExecStart=$bin/sdnd $args
Restart=always
RestartSec=1
KillMode=process

[Install]
WantedBy=multi-user.target
UNIT
)
if [ "$(cat "$unit" 2>/dev/null)" != "$new" ]; then
	echo "$new" >"$unit"
	systemctl daemon-reload
	systemctl enable sdnd.service >/dev/null 2>&1
	systemctl restart sdnd.service
	log "sdnd.service (re)started: sdnd $args"
else
	systemctl start sdnd.service
	log "sdnd.service kept"
fi

sdnctl=("$bin/sdnctl" --server "unix://$dir/host1/api.sock" --tls-ca "$dir/tls/ca.crt"
	--tls-cert "$dir/tls/client-admin.crt" --tls-key "$dir/tls/client-admin.key")
if [ "$index" = 1 ]; then
	waitfor 120 "the API on $dir/host1/api.sock" "${sdnctl[@]}" status
	log "applying $dir/hcl"
	"${sdnctl[@]}" apply -f "$dir/hcl" --wait >&2
fi
waitfor 120 "the agent's CNI socket $dir/host$index/cni.sock" test -S "$dir/host$index/cni.sock"
log "attaching workloads"
"$bin/sdnlab" node-attach "${lab[@]}"
