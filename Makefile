# Every target starts from `setup`, which is idempotent: it installs what is missing and
# does nothing (quickly) when everything is already there.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
SYSTEM_PACKAGES := python3 python3-venv iproute2 iputils-ping nftables bird2 \
	containernetworking-plugins podman runc busybox-static gcc libc6-dev iperf3 \
	etcd-server etcd-client containerd golang-go golang-github-appc-cni-dev systemd \
	tcpdump curl graphviz chromium chromium-driver
# The VM suite's QEMU, without the GUI and firmware extras recommends would pull in.
VM_PACKAGES := qemu-system-x86 cpio kmod
STAMP := $(VENV)/.installed
WHEELHOUSE := build/wheelhouse

.PHONY: setup system-packages vm-packages wheelhouse demo test test-vm test-hosts unit contract browser lint bench bench-cni bench-datapath bench-datastore bench-bgp bench-policy bench-conntrack bench-collector bench-flows bench-scale clean

setup: system-packages vm-packages $(STAMP)

system-packages:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "installing system packages:" $$missing; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

vm-packages:
	@missing=$$(for p in $(VM_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "installing VM packages:" $$missing; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(STAMP): pyproject.toml
	@test -x $(PY) || /usr/bin/python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

# What `calico-node install --wheelhouse` installs from: pycalico's wheel (built offline) and
# the wheels of its dependencies and of pip (downloaded once, at the versions .venv has).
wheelhouse: setup
	$(PY) -m pycalico.node.install.wheelhouse $(WHEELHOUSE)

demo: setup
	./demo/lab.sh

test: setup
	$(VENV)/bin/ruff check pycalico tests bench
	$(VENV)/bin/pytest -q tests

test-vm: setup
	$(VENV)/bin/pytest -q -m vm tests/vm

test-hosts: setup
	$(VENV)/bin/pytest -q -m hosts tests/vm

unit: setup
	$(VENV)/bin/pytest -q tests/unit

contract: setup
	$(VENV)/bin/pytest -q tests/contract

browser: setup
	$(VENV)/bin/pytest -q tests/browser

lint: setup
	$(VENV)/bin/ruff check pycalico tests bench

bench: setup
	$(PY) bench/calicoctl_bench.py

bench-cni: setup
	$(PY) bench/cni_bench.py

bench-datapath: setup
	$(PY) bench/datapath.py

bench-policy: setup
	$(PY) bench/policy.py

# Scale curves (issue 23): labs of 10-100 nodes and one node of 5000 endpoints; options in
# ARGS, e.g. make bench-scale ARGS="--nodes 10,25 --etcd-nodes '' --idle 20".
bench-scale: setup
	$(PY) bench/scale.py $(ARGS)

bench-bgp: setup
	$(PY) bench/bgp.py

bench-datastore: setup
	$(PY) bench/datastore_bench.py

bench-conntrack: setup
	$(PY) bench/conntrack_bench.py

bench-collector: setup
	$(PY) bench/nflog_conntrack.py

bench-flows: setup
	$(PY) bench/flows.py

clean:
	rm -rf $(VENV) build *.egg-info
