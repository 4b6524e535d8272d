"""calico-lab's IPIP check: the module loaded, built in, or loadable on demand all count."""

from __future__ import annotations

from pathlib import Path

import pytest

from pycalico.lab.main import ipip_available


def kernel(tmp_path: Path, dep: str = "", builtin: str = "", loaded: bool = False) -> bool:
    sys_module, modules = tmp_path / "sys-module", tmp_path / "modules"
    (sys_module / ("ipip" if loaded else "veth")).mkdir(parents=True)
    modules.mkdir()
    (modules / "modules.dep").write_text(dep)
    (modules / "modules.builtin").write_text(builtin)
    return ipip_available(str(sys_module), str(modules))


def test_a_loaded_module_counts(tmp_path: Path) -> None:
    assert kernel(tmp_path, loaded=True)


@pytest.mark.parametrize(
    "line",
    [
        "kernel/net/ipv4/ipip.ko: kernel/net/ipv4/tunnel4.ko kernel/net/ipv4/ip_tunnel.ko\n",
        "kernel/net/ipv4/ipip.ko.xz: kernel/net/ipv4/tunnel4.ko.xz\n",
    ],
)
def test_a_module_not_loaded_yet_counts_when_modprobe_can_load_it(
    tmp_path: Path, line: str
) -> None:
    assert kernel(tmp_path, dep="kernel/net/ipv4/tunnel4.ko:\n" + line)


def test_a_built_in_ipip_counts(tmp_path: Path) -> None:
    assert kernel(tmp_path, builtin="kernel/net/ipv4/ip_tunnel.ko\nkernel/net/ipv4/ipip.ko\n")


def test_a_kernel_without_ipip_does_not_count(tmp_path: Path) -> None:
    assert not kernel(tmp_path, dep="kernel/net/ipv6/sit.ko:\nkernel/net/ipv4/myipip.ko:\n")


def test_a_kernel_without_a_modules_directory_does_not_count(tmp_path: Path) -> None:
    assert not ipip_available(str(tmp_path / "sys"), str(tmp_path / "no-such-dir"))
