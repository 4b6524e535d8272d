"""What pycalico knows about one resource kind, independent of any particular object."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pycalico.api import checks
from pycalico.api.schema import Check, FieldError, Struct

# Whole-resource rules that need the name and spec together (e.g. singleton names).
ResourceCheck = Callable[[dict[str, Any]], list[FieldError]]


@dataclass(frozen=True)
class Kind:
    name: str
    plural: str
    namespaced: bool
    spec: Struct
    status: Struct | None = None
    name_check: Check = checks.dns1123_subdomain
    checks: tuple[ResourceCheck, ...] = ()
    # Labels Calico adds to every object of the kind, computed from the object.
    derived_labels: Callable[[dict[str, Any]], dict[str, str]] | None = None


def singleton_name(*allowed: str, node_prefix: bool = False) -> Check:
    """Names like FelixConfiguration's: `default`, or `node.<nodename>` when allowed."""

    def check(name: str) -> str | None:
        if name in allowed:
            return None
        if node_prefix and name.startswith("node."):
            return checks.dns1123_subdomain(name[len("node.") :])
        choices = " or ".join(
            [f"'{a}'" for a in allowed] + (["'node.<nodename>'"] if node_prefix else [])
        )
        return f"name must be {choices}"

    return check
