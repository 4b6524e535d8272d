#!/usr/bin/env bash
# make demo: a 3-node VXLAN lab with two pods per node, its routes, and the probe matrix.
# Everything lives in network namespaces on this host; nothing touches its real network.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
LAB=demo
export CALICO_LAB=$LAB

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

if calico-lab status --name "$LAB" >/dev/null 2>&1; then
  calico-lab down --name "$LAB" >/dev/null
fi
step calico-lab up --name "$LAB" --nodes 3 --encap vxlan
for n in 1 2 3; do
  step calico-lab pod add "web$n" --node "node$n" --labels app=web --serve 80,53/udp
  step calico-lab pod add "client$n" --node "node$n" --labels app=client --serve 80
done
step calico-lab status
step calico-lab exec node1 -- calicoctl get nodes -o wide
step calico-lab exec node1 -- calicoctl get ippool -o wide
step calico-lab exec node1 -- calicoctl get workloadendpoints -A
step calico-lab exec node1 -- ip route
step calico-lab exec node1 -- ip -d link show vxlan.calico
step calico-lab probe
step calico-lab trace --from default/client1 --to default/web3 --port 80
cat <<TXT

The lab '$LAB' is still running. For a shell whose calicoctl and kubectl act on it:
  eval "\$($PWD/.venv/bin/calico-lab env --name $LAB)"
Things to try next:
  calico-lab get pods -o wide                         # kubectl's columns
  calico-lab graph -o $LAB.svg                        # the lab drawn by Graphviz
  calico-lab trace --from default/client1 --to 203.0.113.1   # the masquerade on the way out
  calico-lab logs node1 --component felix -f          # Felix's applies as they happen
  calico-lab console                                  # the flow console on http://127.0.0.1:8081/
                                                      # and the lab page (pods, policies, traces) on /lab/
  calico-lab exec node1 -- curl -s 127.0.0.1:9091/metrics | grep '^felix_'   # Felix's metrics
  calico-lab exec default/client1 -- curl -s $(calico-lab pod list | awk '/web2/ {print $3}')
  calico-lab exec node2 -- ip route                   # routes on another node
  calico-lab exec default/client1 -- ping -c2 $(calico-lab pod list | awk '/web3/ {print $3}')
  calico-lab exec node1 -- calicoctl ipam show --show-blocks
  calico-lab probe --proto udp --port 53
  calico-lab pod add extra --node node2 --serve 80 && calico-lab probe
  calico-lab exec node1 -- calicoctl node status      # BGP peers (in a --encap none lab)
  # policy: only the client pods may reach the web pods, and only on TCP 80
  printf 'apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: web, namespace: default}\nspec: {selector: app == "web", ingress: [{action: Allow, protocol: TCP, source: {selector: app == "client"}, destination: {ports: [80]}}]}\n' | calico-lab exec node1 -- calicoctl apply -f -
  calico-lab probe && calico-lab exec node1 -- calicoctl policy explain --from default/web2 --to default/web1 --port 80
  calico-lab trace --from default/web2 --to default/web1 --port 80   # dropped: where, and by which rule
  calico-lab down                                     # removes every namespace and process
TXT
