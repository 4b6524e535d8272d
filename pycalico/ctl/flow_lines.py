"""One line per flow, in the habit of Hubble's compact output (reference flows.md §10) (pure).

    Nov 14 22:13:20.000: shop/client-5d8f9-* -> shop/web-7c4b6-*:80 tcp INGRESS ALLOWED
        BY CalicoNetworkPolicy shop/allow-web rule 1      (one line)

Hubble's order: the time (Go's StampMilli, local time), source, `->`, destination and port,
then what was observed and the verdict. The direction is the reporter's: the destination
reports ingress, the source egress. After the verdict comes what decided it: the last hit
of the enforced trace that is not a pass — a rule (`rule N` of a policy or profile), or
a tier's end, named with the policy that selected the flow there (its trigger). A pending
trace (staged policies) is shown after it in brackets: what would happen if they were
enforced. `-o wide` adds the counters and labels.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Mapping, Sequence
from typing import Any

Item = Mapping[str, Any]

VERDICTS = {"Allow": "ALLOWED", "Deny": "DENIED", "Pass": "PASSED"}
DIRECTIONS = {"Dst": "INGRESS", "Src": "EGRESS"}
GLOBAL = "Global"


def stamp_milli(rfc3339: str) -> str:
    """`2023-11-14T22:13:20Z` as Go's StampMilli in local time: `Nov 14 22:13:20.000`."""
    try:
        seconds = calendar.timegm(time.strptime(rfc3339, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        return rfc3339
    local = time.localtime(seconds)
    return f"{time.strftime('%b', local)} {local.tm_mday:2d} {time.strftime('%H:%M:%S', local)}.000"


def endpoint(namespace: str, name: str) -> str:
    return name if namespace in (GLOBAL, "-", "") else f"{namespace}/{name}"


def _policy(hit: Item) -> str:
    kind, namespace, name = hit.get("kind", ""), hit.get("namespace", ""), hit.get("name", "")
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def decider(trace: Sequence[Item]) -> str:
    """What decided, from a trace: `CalicoNetworkPolicy shop/allow-web rule 1`, or
    `end of tier default (selected by NetworkPolicy shop/deny-all)`."""
    if not trace:
        return "no policy"
    deciding = [h for h in trace if h.get("action") != "Pass"]
    hit = deciding[-1] if deciding else trace[-1]
    if hit.get("kind") == "EndOfTier":
        trigger = hit.get("trigger")
        selected = f" (selected by {_policy(trigger)})" if trigger else ""
        return f"end of tier {hit.get('tier', '')}{selected}"
    return f"{_policy(hit)} rule {hit.get('rule_index', 0)}"


def _verdict(action: str) -> str:
    return VERDICTS.get(action, action.upper() or "UNKNOWN")


def compact(item: Item) -> str:
    policies = item.get("policies") or {}
    enforced, pending = policies.get("enforced") or [], policies.get("pending") or []
    line = (
        f"{stamp_milli(item.get('start_time', ''))}: "
        f"{endpoint(item.get('source_namespace', ''), item.get('source_name', ''))} -> "
        f"{endpoint(item.get('dest_namespace', ''), item.get('dest_name', ''))}"
        f":{item.get('dest_port', 0)} {item.get('protocol', '')} "
        f"{DIRECTIONS.get(item.get('reporter', ''), item.get('reporter', ''))} "
        f"{_verdict(item.get('action', ''))} BY {decider(enforced)}"
    )
    if pending:
        pending_action = next(
            (h.get("action", "") for h in reversed(pending) if h.get("action") != "Pass"),
            pending[-1].get("action", ""),
        )
        line += f" [pending: {_verdict(pending_action)} BY {decider(pending)}]"
    return line


def wide(item: Item) -> str:
    counters = (
        f"connections {item.get('num_connections_started', 0)} started, "
        f"{item.get('num_connections_completed', 0)} completed, "
        f"{item.get('num_connections_live', 0)} live; "
        f"packets {item.get('packets_in', 0)} in, {item.get('packets_out', 0)} out; "
        f"bytes {item.get('bytes_in', 0)} in, {item.get('bytes_out', 0)} out"
    )
    labels = (
        f"labels {item.get('source_labels', '') or '-'} -> {item.get('dest_labels', '') or '-'}"
    )
    return f"{compact(item)} ({counters}; {labels})"
