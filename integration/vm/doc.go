// Package vm boots small QEMU VMs of the Debian image vm/build-image.sh
// makes, for tests of sdn on OVS's kernel datapath, which this machine's own
// kernel lacks.
//
// Start boots N VMs (1 vCPU, 1 GiB each by default) with direct kernel boot
// on copy-on-write overlays of the cached image, each with one virtio NIC on
// a Linux bridge inside a network namespace the harness creates (NAME-net):
// that bridge is both the VMs' private underlay (lab.Subnet(NAME), VM i at
// .i, the bridge at .254, all in 198.18.0.0/15) and the harness's path to
// them over SSH, with a key generated per run and given to each VM on its
// kernel command line. QEMU itself runs in that namespace, so nothing of the
// lab touches the root namespace. Every VM's serial console goes to
// DIR/vmI.serial for failures. TCG (-accel tcg -cpu qemu64) unless the host
// has kvm_intel or kvm_amd loaded, then KVM.
//
// Provision makes an sdn lab on them (on any Hosts): the lab's files from
// lab.Prepare (CA, certificates, HCL) and the binaries copied in, and
// vm/provision.sh run in each VM, which the Vagrantfile runs too; Lab.Matrix
// pings every pair of workloads with one SSH command per VM.
//
// Close stops the QEMUs by pid, deletes the namespace (with its bridge and
// taps) and the overlays; it is safe to call twice.
package vm
