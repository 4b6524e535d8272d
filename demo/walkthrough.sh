#!/usr/bin/env bash
# The calicoctl walk-through from the seeds, against pycalico's own datastore.
# It uses a private SQLite file (removed at the end), so it never touches a real cluster's
# state. Until calico-lab lands, this is `make demo`'s main job.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
work=$(mktemp -d /tmp/pycalico-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
export DATASTORE_TYPE=sqlite SQLITE_PATH="$work/pycalico.db"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

cat >"$work/ippool.yaml" <<'YAML'
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: default-ipv4-ippool
spec:
  cidr: 10.244.0.0/16
  ipipMode: Always
  natOutgoing: true
  nodeSelector: all()
YAML
cat >"$work/nodes.yaml" <<'YAML'
apiVersion: projectcalico.org/v3
kind: Node
metadata:
  name: k8s-node1
  labels:
    kubernetes.io/hostname: k8s-node1
spec:
  bgp:
    ipv4Address: 192.0.2.11/24
---
apiVersion: projectcalico.org/v3
kind: Node
metadata:
  name: k8s-node2
spec:
  bgp:
    ipv4Address: 192.0.2.12/24
YAML
cat >"$work/bgpconfig.yaml" <<'YAML'
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata:
  name: default
spec:
  logSeverityScreen: Info
  nodeToNodeMeshEnabled: false
  asNumber: 64512
YAML
cat >"$work/bgppeer.yaml" <<'YAML'
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata:
  name: peer-with-route-reflectors
spec:
  nodeSelector: all()
  peerSelector: route-reflector == 'true'
YAML
cat >"$work/policy.yaml" <<'YAML'
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata:
  name: allow-frontend
  namespace: default
spec:
  selector: app == 'backend'
  ingress:
  - action: Allow
    protocol: TCP
    source:
      selector: app == 'frontend'
    destination:
      ports: [80, "8000:8080"]
YAML

step calicoctl version
step calicoctl apply -f "$work/ippool.yaml"
step calicoctl get ippool -o wide
step calicoctl get ippool -o json
echo
echo "# switch the pool from IPIP to VXLAN the way the tutorials do: export, edit, apply"
calicoctl get ippool default-ipv4-ippool -o yaml >"$work/exported.yaml"
sed -i 's/ipipMode: Always/ipipMode: Never/; s/vxlanMode: Never/vxlanMode: Always/' "$work/exported.yaml"
step calicoctl apply -f "$work/exported.yaml"
step calicoctl get ippool -o wide
step calicoctl apply -f "$work/nodes.yaml"
step calicoctl get nodes --output=wide
step calicoctl label node k8s-node1 route-reflector=true
step calicoctl patch node k8s-node1 -p '{"spec":{"bgp":{"routeReflectorClusterID":"244.0.0.1"}}}'
step calicoctl get node -l "route-reflector == 'true'"
step calicoctl apply -f "$work/bgpconfig.yaml"
step calicoctl get bgpconfig
step calicoctl apply -f "$work/bgppeer.yaml"
step calicoctl get bgppeer
step calicoctl apply -f "$work/policy.yaml"
step calicoctl get networkpolicy -A -o wide
echo
echo "# bad input is refused with one line and nothing is written:"
printf 'apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: bad}\nspec: {cidr: 10.244.1.0/24}\n' >"$work/bad.yaml"
step calicoctl apply -f "$work/bad.yaml" || true
step calicoctl delete -f "$work/bgppeer.yaml"
step calicoctl get bgppeer
