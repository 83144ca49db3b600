#!/usr/bin/env bash
# vm/vagrant/box.sh IMAGE_DIR: make the local Vagrant box (provider libvirt)
# from an image vm/build-image.sh built, or reuse the one made before from
# the same image. The last line of stdout is the box file.
#
#   $SDN_VM_CACHE/box-<image key>.box   (default cache ~/.cache/sdn-vm)
#
# The box holds the image's disk as box.img, its kernel and initrd (the
# libvirt provider boots them directly: the image's disk has no boot
# loader), metadata.json and a box Vagrantfile that sets kernel, initrd and
# command line, and logs in as root. Vagrant's well-known public key goes in
# through the kernel command line (sdn.ssh=, which the image's sdn-vm-setup
# appends to root's authorized_keys at every boot), so the box and the QEMU
# harness boot one image; at the first `vagrant up` Vagrant replaces it with
# a key of the machine's own, as with any box.
set -euo pipefail

img="${1:?usage: box.sh IMAGE_DIR}"
img="$(cd "$img" && pwd -P)"
cache="${SDN_VM_CACHE:-$HOME/.cache/sdn-vm}"
log() { echo "vm-box: $*" >&2; }

for f in disk.qcow2 vmlinuz initrd.img cmdline; do
	[ -f "$img/$f" ] || { log "$img/$f missing: build the image with vm/build-image.sh"; exit 1; }
done
pub=""
for p in /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub /opt/vagrant/embedded/gems/gems/vagrant-*/keys/vagrant.pub; do
	[ -f "$p" ] && pub="$p" && break
done
[ -n "$pub" ] || { log "Vagrant's keys/vagrant.pub not found: is vagrant installed?"; exit 1; }

key=$(basename "$img")
key="${key#image-}"
box="$cache/box-$key.box"
if [ -f "$box" ]; then
	log "cached: $box"
	echo "$box"
	exit 0
fi

work="$(mktemp -d "$cache/box.XXXXXX")"
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
ln -s "$img/disk.qcow2" "$work/box.img"
ln -s "$img/vmlinuz" "$work/vmlinuz"
ln -s "$img/initrd.img" "$work/initrd.img"
gib=$(( ($(qemu-img info --output=json "$img/disk.qcow2" | sed -n 's/.*"virtual-size": *\([0-9]*\).*/\1/p') + (1 << 30) - 1) >> 30 ))
printf '{"provider": "libvirt", "format": "qcow2", "virtual_size": %d}\n' "$gib" >"$work/metadata.json"
cmdline="$(cat "$img/cmdline") sdn.ssh=$(base64 -w0 <"$pub")"
cat >"$work/Vagrantfile" <<VF
# The sdn lab's local box (vm/vagrant/box.sh, from image $key).
Vagrant.configure("2") do |config|
  config.ssh.username = "root"
  config.ssh.sudo_command = "%c"
  config.vm.synced_folder ".", "/vagrant", disabled: true
  config.vm.provider :libvirt do |lv|
    boxdir = File.dirname(File.expand_path(__FILE__))
    lv.kernel = File.join(boxdir, "vmlinuz")
    lv.initrd = File.join(boxdir, "initrd.img")
    lv.cmd_line = "$cmdline"
    lv.disk_bus = "virtio"
  end
end
VF
tar -chf "$work/box" -C "$work" metadata.json Vagrantfile box.img vmlinuz initrd.img
mv "$work/box" "$box"
log "made $box in $(( $(date +%s) - start )) s ($(du -sh "$box" | cut -f1))"
echo "$box"
