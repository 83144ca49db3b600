#!/usr/bin/env bash
# vm/provision.sh: make this VM one host of a VM lab. Run as root inside the
# VM, by the QEMU harness (integration/vm) and by the Vagrantfile's shell
# provisioner alike, so both labs set hosts up with the same code (and, via
# `sdnlab node-args` / `sdnlab node-attach`, the same Go as the netns lab:
# integration/lab NodeArgs, AttachHost).
#
#   vm/provision.sh INDEX HOSTS [IFACE [SERVERS]]
#
#   INDEX   this host's index, 1..HOSTS; host1..hostSERVERS are servers (and
#           agents); host1 applies DIR/hcl once the cluster has a leader
#   HOSTS   the number of hosts
#   IFACE   the underlay interface (default eth0); its address must be
#           lab.Subnet(NAME)+INDEX (`sdnlab prepare` prints them; 198.18.44.I
#           for the name vm), as the servers' certificates name those addresses
#   SERVERS how many hosts are servers (default $SDN_SERVERS, else 1), as
#           `sdnlab prepare --servers` made the lab: 1, host1 bootstraps
#           alone (provision it first, then the agents in any order); or N,
#           a raft cluster of host1..hostN from one --peers list (sdnlab
#           node-args), which needs a majority of them running before any
#           has a leader: provision the servers concurrently (vagrant-libvirt
#           does), as host1 waits for a leader and the others for the
#           networks host1 applies; the agents after, or concurrently too
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
# prints, on host1 waits for the cluster's leader and applies DIR/hcl (on
# the other servers waits until its networks exist), then attaches one
# workload per network (network namespaces <name>-hostI-<network>) with the
# CNI plugin. The last line of stdout is the host's workloads as JSON.
set -euo pipefail
usage="usage: provision.sh INDEX HOSTS [IFACE [SERVERS]]"
index="${1:?$usage}" hosts="${2:?$usage}"
iface="${3:-eth0}" servers="${4:-${SDN_SERVERS:-1}}"
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

lab=(--name "$name" --dir "$dir" --bin "$bin" --hosts "$hosts" --server-count "$servers" --index "$index")
role=()
[ "$index" -le "$servers" ] && role=(--server)
args=$("$bin/sdnlab" node-args "${lab[@]}" "${role[@]}" --iface "$iface" --datapath "$datapath")
unit=/etc/systemd/system/sdnd.service
new=$(cat <<UNIT
[Unit]
Description=sdn daemon (host$index of VM lab $name; vm/provision.sh)
After=openvswitch-switch.service network-online.target
Wants=openvswitch-switch.service

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

# A server asks its own API socket (any server answers any call).
sdnctl=("$bin/sdnctl" --server "unix://$dir/host$index/api.sock" --tls-ca "$dir/tls/ca.crt"
	--tls-cert "$dir/tls/client-admin.crt" --tls-key "$dir/tls/client-admin.key")
# hasnetworks reports whether every network of DIR/hcl exists.
hasnetworks() {
	local want have
	want=$(awk '$1 == "network" && $2 ~ /^"/ {gsub(/"/, "", $2); print $2}' "$dir"/hcl/*.hcl | sort -u)
	have=$("${sdnctl[@]}" get networks | awk 'NR > 1 {print $1}' | sort -u) || return 1
	[ -z "$(comm -23 <(echo "$want") <(echo "$have"))" ]
}
# hasleader reports whether the cluster has a leader (ROLE, the third
# column of cluster members).
hasleader() {
	"${sdnctl[@]}" cluster members | awk 'NR > 1 && $3 == "leader" {found = 1} END {exit !found}'
}
if [ "$index" = 1 ] && [ "$servers" = 1 ]; then
	waitfor 120 "the API on $dir/host1/api.sock" "${sdnctl[@]}" status
elif [ "$index" = 1 ]; then
	# A leader is elected once a majority of host1..host$servers runs sdnd.
	log "waiting for a leader among host1..host$servers"
	waitfor 900 "a leader among host1..host$servers" hasleader
	"${sdnctl[@]}" cluster members >&2
fi
if [ "$index" = 1 ]; then
	log "applying $dir/hcl"
	"${sdnctl[@]}" apply -f "$dir/hcl" --wait >&2
elif [ "$index" -le "$servers" ]; then
	log "waiting for host1 to apply $dir/hcl (its networks)"
	waitfor 900 "the networks of $dir/hcl" hasnetworks
fi
waitfor 120 "the agent's CNI socket $dir/host$index/cni.sock" test -S "$dir/host$index/cni.sock"
log "attaching workloads"
"$bin/sdnlab" node-attach "${lab[@]}"
