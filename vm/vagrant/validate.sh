#!/usr/bin/env bash
# vm/vagrant/validate.sh: `vagrant validate` of the Vagrantfile for both
# providers (`make vm-validate`; run from the repository's top). libvirt's
# is checked with the vagrant-libvirt plugin; VirtualBox's provider is
# built into Vagrant, and validating its settings needs only that Vagrant
# finds VBoxManage: where VirtualBox is not installed (this machine; Debian
# does not ship it) a stand-in that answers `VBoxManage --version` is put
# first on the PATH, for validate only.
set -euo pipefail
export VAGRANT_CHECKPOINT_DISABLE=1 VAGRANT_HOME="${VAGRANT_HOME:-$(mktemp -d)}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"; [ -n "${SDN_KEEP_VAGRANT_HOME:-}" ] || rm -rf "$VAGRANT_HOME"' EXIT
echo "libvirt:"
VAGRANT_DEFAULT_PROVIDER=libvirt vagrant validate
echo "virtualbox:"
if ! command -v VBoxManage >/dev/null; then
	printf '#!/bin/sh\n[ "$1" = --version ] && echo 7.0.20r163906\n' >"$tmp/VBoxManage"
	chmod +x "$tmp/VBoxManage"
	export PATH="$tmp:$PATH"
fi
VAGRANT_DEFAULT_PROVIDER=virtualbox vagrant validate
