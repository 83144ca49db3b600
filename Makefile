# sdn: a standalone software-defined network.
#
#   make            build bin/sdnd, bin/sdnctl and the CNI plugin bin/sdn
#   make lab        bring up the 3-host lab on this machine (as root); make lab-down removes it
#   make test       install what the tests need, then vet, format check, all tests and a short fuzz run
#   make fuzz       run every fuzz target for FUZZTIME (10m) each
#   make proto      regenerate the gRPC code from proto/sdn/v1/*.proto
#   make deps       install the system packages and Go tools the project uses
#   make install    install sdnd, sdnctl, the CNI plugin and sdnd's systemd unit (PREFIX, DESTDIR); make uninstall
#   make bench      run the benchmarks (as root) into bench/results/; SUITE=name, QUICK=1
#   make vm-image   build (or reuse) the Debian 12 VM image under SDN_VM_CACHE (vm/build-image.sh)
#   make test-vm    the kernel-datapath test in 2 QEMU VMs (integration/vm_test.go); .ci/run runs it after make test
#   make vm-lab     the lab in VMs (Vagrant, libvirt, OVS kernel datapath; docs/vagrant.md); make vm-lab-down removes it

GO        ?= go
BIN       := bin
GOBIN     := $(shell $(GO) env GOPATH)/bin
TEST_FLAGS ?= -count=1 -timeout 18m
# The release version the binaries report (sdnctl version, the CNI plugin's
# --version): the newest v* tag; without one, the module version the Go
# toolchain stamps from the repository.
VERSION   ?= $(shell git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null)
LDFLAGS   := $(if $(VERSION),-X main.version=$(VERSION))
# Debian packages the tests and the lab use.
# The real-runtime tests (integration/podman_test.go, crio_test.go) use
# podman, containerd, runc, busybox-static (the containers' root file
# system) and containernetworking-plugins (the loopback plugin containerd runs,
# and bridge + host-local, which the cniadd benchmark compares with);
# integration/docker_test.go uses docker.io.
APT_PACKAGES := iptables nftables iproute2 openvswitch-switch ethtool iputils-ping iperf3 sockperf wrk etcd-server \
	podman containerd runc busybox-static containernetworking-plugins docker.io
# crictl (cri-tools) is not packaged in Debian 12: deps builds it from its
# Go module into GOBIN, where integration/crio_test.go finds it.
CRICTL_VERSION := v1.34.0

.PHONY: all build test unit vet fmt-check proto deps tools clean fuzz fuzz-smoke install uninstall

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./sdnd ./sdnctl
	# The plugin runs once per CNI call: without its symbol table and DWARF
	# (-s -w; panics still print function names) it starts ~0.5 ms sooner.
	$(GO) build -ldflags "$(LDFLAGS) -s -w" -o $(BIN)/sdn ./cni

deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@command -v crictl >/dev/null || [ -x "$(GOBIN)/crictl" ] || \
		(echo "installing crictl $(CRICTL_VERSION) into $(GOBIN)"; $(GO) install sigs.k8s.io/cri-tools/cmd/crictl@$(CRICTL_VERSION))

tools:
	@command -v protoc >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler)
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.11
	$(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2

proto: tools
	cd proto && PATH="$(GOBIN):$$PATH" protoc -I . \
		--go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative \
		sdn/v1/*.proto

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# The test of the test-only stale-read switch (cluster/api) needs its build
# tag; without it the switch is compiled out.
unit:
	$(GO) test $(TEST_FLAGS) ./...
	$(GO) test $(TEST_FLAGS) -tags sdn_unsafe_reads -run UnsafeFollowerReads ./cluster/api

test: deps fmt-check vet unit fuzz-smoke

# Fuzz targets, package:FuzzName. go test fuzzes one target per run, so
# they run one after another. What they find that is new stays in go's
# build cache; a failing input is written to the package's
# testdata/fuzz/FuzzName/: fix the bug and commit it, it is then a test
# case of every `go test`. fuzz-smoke (part of make test) runs each for
# FUZZ_SMOKE: 6 x 12 s plus the instrumented builds, about two minutes.
# -timeout 0: go test's default 10m timeout would end a 10m run. Each new
# input found is minimized in at most 100 runs of the target: a time limit
# that runs out kills the fuzzing process, and FuzzApply (milliseconds an
# input, a state to build at start) then restarts it for nearly every input
# it finds.
FUZZ_TARGETS := ./spec:FuzzParse ./cluster/command:FuzzDecode ./cluster/fsm:FuzzApply \
	./snapshot:FuzzRead ./cni:FuzzConf ./cluster/alloc:FuzzPoolMatchesModel
FUZZTIME   ?= 10m
FUZZ_SMOKE ?= 12s
FUZZ_FLAGS ?= -fuzzminimizetime 100x -timeout 0

# go test -fuzz sometimes fails with "context deadline exceeded" when
# -fuzztime runs out while an input is running, having found nothing: that
# is the fuzzer's own flake, so only a run that wrote a failing input, or
# failed any other way, fails the target.
fuzz: SHELL := /bin/bash
fuzz:
	@out=$$(mktemp); trap 'rm -f $$out' EXIT; \
	for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; name=$${t##*:}; \
		echo "$(GO) test -run '^$$' -fuzz '^$$name\$$' -fuzztime $(FUZZTIME) $(FUZZ_FLAGS) $$pkg"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $(FUZZ_FLAGS) $$pkg 2>&1 | tee $$out; \
		[ $${PIPESTATUS[0]} -eq 0 ] && continue; \
		if grep -q "Failing input written to" $$out || ! grep -q "context deadline exceeded" $$out; then exit 1; fi; \
		echo "fuzz: $$name: stopped at the -fuzztime limit with \"context deadline exceeded\" and no failing input: the fuzzer's flake, not a finding"; \
	done

fuzz-smoke:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZ_SMOKE)

clean:
	rm -rf $(BIN)

# make install: sdnd and sdnctl into PREFIX/bin, the CNI plugin into
# CNI_BIN_DIR (where runtimes look by default), and sdnd's systemd unit,
# which starts sdnd with /etc/sdn/sdnd.hcl once that file exists (the
# example is installed beside it; docs/runtimes.md). DESTDIR prefixes every
# path (packaging). Nothing is started or enabled: systemctl enable --now
# sdnd does that. make uninstall removes what install put there but the
# configuration (/etc/sdn/sdnd.hcl).
PREFIX      ?= /usr/local
DESTDIR     ?=
CNI_BIN_DIR ?= /opt/cni/bin
SYSTEMD_DIR ?= /etc/systemd/system
SDN_ETC     ?= /etc/sdn

install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(CNI_BIN_DIR) $(DESTDIR)$(SYSTEMD_DIR) $(DESTDIR)$(SDN_ETC)
	install -m 0755 $(BIN)/sdnd $(BIN)/sdnctl $(DESTDIR)$(PREFIX)/bin/
	install -m 0755 $(BIN)/sdn $(DESTDIR)$(CNI_BIN_DIR)/sdn
	sed 's|@BINDIR@|$(PREFIX)/bin|g' sdnd/sdnd.service > $(DESTDIR)$(SYSTEMD_DIR)/sdnd.service
	chmod 0644 $(DESTDIR)$(SYSTEMD_DIR)/sdnd.service
	install -m 0644 sdnd/sdnd.hcl.example $(DESTDIR)$(SDN_ETC)/sdnd.hcl.example
	@echo "installed; next: write $(SDN_ETC)/sdnd.hcl (see $(SDN_ETC)/sdnd.hcl.example), then systemctl daemon-reload && systemctl enable --now sdnd,"
	@echo "and for a container runtime: sdnctl cni install --network NETWORK (docs/runtimes.md)"

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/sdnd $(DESTDIR)$(PREFIX)/bin/sdnctl $(DESTDIR)$(CNI_BIN_DIR)/sdn \
		$(DESTDIR)$(SYSTEMD_DIR)/sdnd.service $(DESTDIR)$(SDN_ETC)/sdnd.hcl.example
	@echo "kept: $(SDN_ETC)/sdnd.hcl if any, and conflists sdnctl cni install wrote (/etc/cni/net.d/sdn*.conflist)"

# The multi-host lab on this machine, as root (see integration/lab): hosts are
# network namespaces with their own OVS and sdnd on a shared underlay, one
# workload per network per host attached by the CNI plugin, and a
# connectivity matrix checked against the isolation mode. `make lab` on a
# running lab keeps it (and repairs what broke); `make lab-down` removes it.
LAB_DIR   ?= .lab
LAB_FLAGS ?=

.PHONY: lab lab-down

lab:
	@$(MAKE) --no-print-directory deps build
	$(GO) build -o $(BIN)/ ./integration/cmd/sdnprobe
	$(GO) run ./integration/cmd/sdnlab up --dir $(LAB_DIR) --bin $(BIN) $(LAB_FLAGS)

lab-down:
	$(GO) run ./integration/cmd/sdnlab down --dir $(LAB_DIR)

# Benchmarks (see bench/README.md), as root: every suite, or SUITE=name (comma-
# separated for several); QUICK=1 is the smoke-test size (minutes, figures
# not to be judged). The report lands in bench/results/ (latest.md, latest.json).
SUITE       ?=
QUICK       ?=
BENCH_FLAGS ?=

.PHONY: bench

bench:
	@$(MAKE) --no-print-directory deps
	$(GO) run ./bench/cmd/sdnbench $(if $(SUITE),-suite $(SUITE)) $(if $(filter-out 0,$(QUICK)),-quick) $(BENCH_FLAGS)

# The VM image (vm/build-image.sh): Debian 12 with OVS's kernel datapath, for
# the VM labs. Cached under SDN_VM_CACHE (default ~/.cache/sdn-vm) by a key
# of its inputs. VM_APT_PACKAGES are what building and booting it need; they
# are not in APT_PACKAGES because make test boots no VM.
VM_APT_PACKAGES := mmdebstrap qemu-system-x86 qemu-utils e2fsprogs openssh-client

.PHONY: vm-deps vm-image test-vm

vm-deps:
	@missing=""; for p in $(VM_APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

vm-image: vm-deps
	vm/build-image.sh

# The test of OVS's kernel datapath in two VMs (integration/vm_test.go,
# TestVMKernelDatapath): minutes of TCG, so not in make test, whose 20
# minutes it would exceed; .ci/run runs it after make test.
test-vm: vm-deps deps
	SDN_VM_TEST=1 $(GO) test -count=1 -timeout 40m -v -run '^TestVMKernelDatapath$$' ./integration/

# The Vagrant lab (Vagrantfile, vm/vagrant/, docs/vagrant.md): real VMs with
# OVS's kernel datapath. On a laptop: make vm-stage, then vagrant up. On a
# machine of the project's kind (no systemd, no internet), as root: make
# vm-lab brings up SDN_NODES (3) VMs under libvirt in a network namespace of
# its own, from a box built locally (cached in SDN_VM_CACHE, default
# ~/.cache/sdn-vm); again, it keeps the running VMs and prints the matrix;
# make vm-lab-down removes everything but the cache. VM_LAB_PACKAGES are
# installed without their recommendations (which would bring a kernel,
# libguestfs and an NFS server).
VM_LAB_PACKAGES := vagrant vagrant-libvirt libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients \
	dnsmasq-base iptables
NODE ?= host1

.PHONY: vm-lab-deps vm-stage vm-lab vm-lab-down vm-ssh vm-matrix vm-validate

vm-lab-deps: vm-deps
	@missing=""; for p in $(VM_LAB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

vm-stage: build
	LDFLAGS="$(LDFLAGS)" GO="$(GO)" vm/vagrant/stage.sh

# host.sh remember notes /dev/kvm's mode before the packages' install
# changes it, so vm-lab-down puts back the machine's own.
vm-lab:
	vm/vagrant/host.sh remember
	@$(MAKE) --no-print-directory vm-lab-deps vm-stage
	vm/vagrant/lab.sh up

vm-lab-down:
	vm/vagrant/lab.sh down

vm-ssh:
	vm/vagrant/lab.sh ssh $(NODE)

vm-matrix:
	vm/vagrant/lab.sh matrix

# vagrant validate for libvirt and VirtualBox (no VirtualBox needed).
vm-validate:
	vm/vagrant/validate.sh
