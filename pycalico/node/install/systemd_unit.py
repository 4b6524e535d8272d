"""`calico-node.service` (pure): the unit of Calico's non-cluster host docs, for pycalico.

From the docs' unit: `User=root`, `EnvironmentFile=/etc/calico/calico.env`, an
`ExecStartPre` that makes /var/run/calico, `KillMode=process`, `Restart=on-failure`,
`LimitNOFILE=32000`, `WantedBy=multi-user.target`. `KillMode=process` matters more here
than in Calico: BIRD is calico-node's child, and with the default (control-group) systemd
would kill it whenever calico-node exits, dropping every BGP session and BIRD's routes on a
crash or a restart; with `process` BIRD keeps running and the restarted calico-node adopts
it from its pid file (under systemd calico-node leaves BIRD to the unit's KillMode, so a
`systemctl stop` leaves it running too, as it leaves Felix's dataplane; uninstall stops
it). The node waits
for network-online, because startup autodetects the node's address from the interfaces.
`RestartSec=5` (not in Calico's unit) keeps a node whose datastore is not up yet retrying
instead of hitting systemd's start limit (5 starts in 10 s) and staying down.
"""

from __future__ import annotations

from pycalico.node.install.layout import CALICO_ENV, RUN_DIR, venv_calico_node


def render(prefix: str) -> str:
    return f"""\
[Unit]
Description=pycalico calico-node (Felix, confd and BIRD, the CNI agent)
Wants=network-online.target
After=syslog.target network.target network-online.target

[Service]
User=root
EnvironmentFile={CALICO_ENV}
ExecStartPre=/bin/mkdir -p {RUN_DIR}
ExecStart={venv_calico_node(prefix)}
KillMode=process
Restart=on-failure
RestartSec=5
LimitNOFILE=32000

[Install]
WantedBy=multi-user.target
"""
