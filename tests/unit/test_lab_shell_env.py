"""`calico-lab env`: what eval-ing it defines."""

from __future__ import annotations

from pycalico.lab.shell_env import exports


def test_path_lab_and_the_lab_bound_calicoctl_and_kubectl() -> None:
    lines = exports("demo", "/srv/py calico/.venv/bin").splitlines()
    assert lines[0] == "export PATH='/srv/py calico/.venv/bin':\"$PATH\""
    assert "export CALICO_LAB=demo" in lines
    assert 'calicoctl() { calico-lab exec node1 --name demo -- calicoctl "$@"; }' in lines
    assert 'kubectl() { calico-lab "$@"; }' in lines
