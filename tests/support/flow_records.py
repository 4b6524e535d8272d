"""Flow records for tests: a plausible Goldmane flow with any field overridden."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pycalico.flows.record import (
    Action,
    EndpointType,
    Flow,
    FlowKey,
    PolicyHit,
    PolicyKind,
    PolicyTrace,
    Reporter,
)

ALLOW_WEB = PolicyHit(
    PolicyKind.CALICO_NETWORK_POLICY, "allow-web", "shop", "default", Action.ALLOW, 0, 1
)
DENY_TIER_END = PolicyHit(
    PolicyKind.END_OF_TIER,
    "",
    "",
    "default",
    Action.DENY,
    0,
    -1,
    PolicyHit(PolicyKind.NETWORK_POLICY, "deny-all", "shop", "default", Action.UNSPECIFIED, 0, 0),
)
STAGED_DENY = PolicyHit(
    PolicyKind.STAGED_NETWORK_POLICY, "lockdown", "shop", "default", Action.DENY, 0, 0
)

_KEY_FIELDS = set(FlowKey.__dataclass_fields__)


def flow_key(**fields: Any) -> FlowKey:
    base = FlowKey(
        source_name="client-5d8f9-*",
        source_namespace="shop",
        source_type=EndpointType.WORKLOAD,
        dest_name="web-7c4b6-*",
        dest_namespace="shop",
        dest_type=EndpointType.WORKLOAD,
        dest_port=80,
        proto="tcp",
        reporter=Reporter.DST,
        action=Action.ALLOW,
        policies=PolicyTrace(enforced=(ALLOW_WEB,)),
    )
    return replace(base, **fields)


def flow(start: int = 1_700_000_000, **fields: Any) -> Flow:
    """A flow starting at `start`; key fields and flow fields may both be given."""
    key_fields = {k: v for k, v in fields.items() if k in _KEY_FIELDS}
    flow_fields = {k: v for k, v in fields.items() if k not in _KEY_FIELDS}
    base = Flow(
        key=flow_key(**key_fields),
        start_time=start,
        end_time=start,
        source_labels=frozenset({"app=client", "team=a"}),
        dest_labels=frozenset({"app=web"}),
        packets_in=4,
        packets_out=6,
        bytes_in=400,
        bytes_out=600,
        num_connections_started=1,
        num_connections_completed=1,
    )
    return replace(base, **flow_fields)
