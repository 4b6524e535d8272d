"""Names and namespaces typed on the command line, checked before they reach the datastore."""

from __future__ import annotations

from pycalico.api import checks
from pycalico.api.kind import Kind
from pycalico.ctl.errors import CtlError


def check_namespace(namespace: str | None) -> None:
    if namespace is not None:
        reason = checks.dns1123_label(namespace)
        if reason:
            raise CtlError(f"invalid namespace '{namespace}': {reason}")


def can_exist(kind: Kind, name: str) -> bool:
    """False for names no stored object can have (so the lookup is simply "not found")."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return bool(name) and kind.name_check(name) is None
