"""A flow as whisker-backend's HTTP API answers it (reference flows.md §7) (pure).

Whisker's fields and display mapping: times in RFC 3339, labels as one string joined with
` | `, the namespace of what is not namespaced `Global`, the networks `PUBLIC NETWORK` and
`PRIVATE NETWORK`, enums by their proto names. pycalico adds what whisker-backend leaves
out and a command line wants: the endpoint types and the connection counters (clients that
do not know them ignore them).
"""

from __future__ import annotations

import time
from typing import Any

from pycalico.flows.query import shown_name, shown_namespace
from pycalico.flows.record import Flow, PolicyHit

LABEL_SEPARATOR = " | "


def rfc3339(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def hit_json(hit: PolicyHit) -> dict[str, Any]:
    return {
        "kind": hit.kind.value,
        "name": hit.name,
        "namespace": hit.namespace,
        "tier": hit.tier,
        "action": hit.action.value,
        "policy_index": hit.policy_index,
        "rule_index": hit.rule_index,
        "trigger": None if hit.trigger is None else hit_json(hit.trigger),
    }


def flow_json(flow: Flow) -> dict[str, Any]:
    key = flow.key
    return {
        "start_time": rfc3339(flow.start_time),
        "end_time": rfc3339(flow.end_time),
        "action": key.action.value,
        "source_name": shown_name(key.source_name),
        "source_namespace": shown_namespace(key.source_namespace),
        "source_labels": LABEL_SEPARATOR.join(sorted(flow.source_labels)),
        "dest_name": shown_name(key.dest_name),
        "dest_namespace": shown_namespace(key.dest_namespace),
        "dest_labels": LABEL_SEPARATOR.join(sorted(flow.dest_labels)),
        "protocol": key.proto,
        "dest_port": key.dest_port,
        "reporter": key.reporter.value,
        "policies": {
            "enforced": [hit_json(h) for h in key.policies.enforced],
            "pending": [hit_json(h) for h in key.policies.pending],
        },
        "packets_in": flow.packets_in,
        "packets_out": flow.packets_out,
        "bytes_in": flow.bytes_in,
        "bytes_out": flow.bytes_out,
        "source_type": key.source_type.value,
        "dest_type": key.dest_type.value,
        "num_connections_started": flow.num_connections_started,
        "num_connections_completed": flow.num_connections_completed,
        "num_connections_live": flow.num_connections_live,
    }


def list_json(items: list[dict[str, Any]], total_pages: int) -> dict[str, Any]:
    return {"total": {"totalPages": total_pages}, "items": items}
