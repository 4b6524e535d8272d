"""`calico-lab env`: the shell lines that make a lab the one the user's tools talk to (pure).

`eval "$(calico-lab env)"` puts pycalico's executables on PATH, makes the lab the default
of every calico-lab command, and defines `calicoctl` and `kubectl` as shell functions that
run them against the lab: calicoctl on the lab's first node (where its datastore, SQLite
file or etcd cluster, is reachable with the node's own settings, and `node status` finds
BIRD), kubectl as the calico-lab verbs of the same name (get, apply, delete, run, create,
exec, label). A calicoctl on the host's own PATH would read the host's datastore instead.
"""

from __future__ import annotations

import shlex


def exports(lab: str, bin_dir: str, first_node: str = "node1") -> str:
    tools = shlex.quote(bin_dir)
    name = shlex.quote(lab)
    return "\n".join(
        [
            f'export PATH={tools}:"$PATH"',
            f"export CALICO_LAB={name}",
            f"# calicoctl on {first_node} of lab {lab}, with the lab's datastore",
            f'calicoctl() {{ calico-lab exec {first_node} --name {name} -- calicoctl "$@"; }}',
            "# kubectl's verbs as calico-lab has them (get, apply, delete, run, create, exec, "
            "label)",
            'kubectl() { calico-lab "$@"; }',
            "",
        ]
    )
