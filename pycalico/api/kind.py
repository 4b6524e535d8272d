"""What pycalico knows about one resource kind, independent of any particular object."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pycalico.api import checks
from pycalico.api.schema import Check, FieldError, Refusal, Struct

# Whole-resource rules that need the name and spec together (e.g. singleton names).
ResourceCheck = Callable[[dict[str, Any]], list[FieldError]]
# A name's check: None when it is good, else the reason, or Calico's several reasons.
NameCheck = Callable[[str], str | list[str] | None]


@dataclass(frozen=True)
class Kind:
    name: str
    plural: str
    namespaced: bool
    spec: Struct
    status: Struct | None = None
    name_check: NameCheck = checks.metadata_name
    checks: tuple[ResourceCheck, ...] = ()
    # Labels Calico adds to every object of the kind, computed from the object.
    derived_labels: Callable[[dict[str, Any]], dict[str, str]] | None = None


def singleton_refusal(words: str) -> ResourceCheck:
    """A kind of one object, `default`, whose libcalico-go client refuses any other name on
    create, after validation and in a sentence of its own (`Cannot create a Cluster
    Information resource with a name other than "default"`)."""

    def check(resource: dict[str, Any]) -> list[FieldError]:
        name = resource["metadata"]["name"]
        if name == "default":
            return []
        sentence = f'Cannot create a {words} resource with a name other than "default"'
        return [Refusal("metadata.name", name, sentence)]

    return check


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
