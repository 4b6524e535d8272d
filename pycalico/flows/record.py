"""Goldmane's flow record (reference flows.md §1): the key, the policy trace, the counters.

Records travel and are stored in Goldmane's proto field names, so that what Felix sends,
what the aggregator keeps and what whisker-backend's API shows are the same fields. Enum
values are the proto names (`Allow`, `Dst`, `WorkloadEndpoint`, `GlobalNetworkPolicy`).

A FlowKey is immutable and hashable: it is what flows are merged by. Everything else in a
Flow (times, labels, counters) is summed or merged when two records of one key meet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any


class Action(StrEnum):
    UNSPECIFIED = "ActionUnspecified"
    ALLOW = "Allow"
    DENY = "Deny"
    PASS = "Pass"


class Reporter(StrEnum):
    UNSPECIFIED = "ReporterUnspecified"
    SRC = "Src"
    DST = "Dst"


class EndpointType(StrEnum):
    UNSPECIFIED = "EndpointTypeUnspecified"
    WORKLOAD = "WorkloadEndpoint"
    HOST = "HostEndpoint"
    NETWORK_SET = "NetworkSet"
    NETWORK = "Network"


class PolicyKind(StrEnum):
    UNSPECIFIED = "KindUnspecified"
    CALICO_NETWORK_POLICY = "CalicoNetworkPolicy"
    GLOBAL_NETWORK_POLICY = "GlobalNetworkPolicy"
    STAGED_NETWORK_POLICY = "StagedNetworkPolicy"
    STAGED_GLOBAL_NETWORK_POLICY = "StagedGlobalNetworkPolicy"
    STAGED_KUBERNETES_NETWORK_POLICY = "StagedKubernetesNetworkPolicy"
    NETWORK_POLICY = "NetworkPolicy"  # Kubernetes' own (networking.k8s.io/v1)
    PROFILE = "Profile"
    END_OF_TIER = "EndOfTier"
    CLUSTER_NETWORK_POLICY = "ClusterNetworkPolicy"


# Goldmane's "not namespaced" and "no service" marker.
NO_VALUE = "-"


class RecordError(ValueError):
    """A record (or part of one) that is not a Goldmane flow; one line saying what."""


@dataclass(frozen=True)
class PolicyHit:
    """One step of a policy trace: the rule (or a tier's end) that acted on the flow."""

    kind: PolicyKind
    name: str
    namespace: str
    tier: str
    action: Action
    policy_index: int
    rule_index: int  # -1: the tier's end-of-tier default action
    trigger: PolicyHit | None = None  # only for END_OF_TIER: the first policy that selected

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "name": self.name,
            "namespace": self.namespace,
            "tier": self.tier,
            "action": self.action.value,
            "policy_index": self.policy_index,
            "rule_index": self.rule_index,
            "trigger": None if self.trigger is None else self.trigger.to_json(),
        }

    @classmethod
    def from_json(cls, data: Any) -> PolicyHit:
        obj = _mapping(data, "policy hit")
        trigger = obj.get("trigger")
        return cls(
            kind=_enum(PolicyKind, obj.get("kind", PolicyKind.UNSPECIFIED.value), "kind"),
            name=_text(obj.get("name", ""), "name"),
            namespace=_text(obj.get("namespace", ""), "namespace"),
            tier=_text(obj.get("tier", ""), "tier"),
            action=_enum(Action, obj.get("action", Action.UNSPECIFIED.value), "action"),
            policy_index=_integer(obj.get("policy_index", 0), "policy_index"),
            rule_index=_integer(obj.get("rule_index", 0), "rule_index"),
            trigger=None if trigger is None else cls.from_json(trigger),
        )


@dataclass(frozen=True)
class PolicyTrace:
    enforced: tuple[PolicyHit, ...] = ()
    pending: tuple[PolicyHit, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "enforced_policies": [h.to_json() for h in self.enforced],
            "pending_policies": [h.to_json() for h in self.pending],
        }

    @classmethod
    def from_json(cls, data: Any) -> PolicyTrace:
        obj = _mapping(data, "policies")
        return cls(
            enforced=tuple(
                PolicyHit.from_json(h) for h in _items(obj.get("enforced_policies"), "enforced")
            ),
            pending=tuple(
                PolicyHit.from_json(h) for h in _items(obj.get("pending_policies"), "pending")
            ),
        )


@dataclass(frozen=True)
class FlowKey:
    source_name: str
    source_namespace: str
    source_type: EndpointType
    dest_name: str
    dest_namespace: str
    dest_type: EndpointType
    dest_port: int
    proto: str
    reporter: Reporter
    action: Action
    policies: PolicyTrace = PolicyTrace()
    dest_service_name: str = NO_VALUE
    dest_service_namespace: str = NO_VALUE
    dest_service_port_name: str = NO_VALUE
    dest_service_port: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "source_name": self.source_name,
            "source_namespace": self.source_namespace,
            "source_type": self.source_type.value,
            "dest_name": self.dest_name,
            "dest_namespace": self.dest_namespace,
            "dest_type": self.dest_type.value,
            "dest_port": self.dest_port,
            "dest_service_name": self.dest_service_name,
            "dest_service_namespace": self.dest_service_namespace,
            "dest_service_port_name": self.dest_service_port_name,
            "dest_service_port": self.dest_service_port,
            "proto": self.proto,
            "reporter": self.reporter.value,
            "action": self.action.value,
            "policies": self.policies.to_json(),
        }

    @classmethod
    def from_json(cls, data: Any) -> FlowKey:
        obj = _mapping(data, "key")
        return cls(
            source_name=_text(obj.get("source_name", ""), "source_name"),
            source_namespace=_text(obj.get("source_namespace", ""), "source_namespace"),
            source_type=_enum(
                EndpointType, obj.get("source_type", EndpointType.UNSPECIFIED.value), "source_type"
            ),
            dest_name=_text(obj.get("dest_name", ""), "dest_name"),
            dest_namespace=_text(obj.get("dest_namespace", ""), "dest_namespace"),
            dest_type=_enum(
                EndpointType, obj.get("dest_type", EndpointType.UNSPECIFIED.value), "dest_type"
            ),
            dest_port=_integer(obj.get("dest_port", 0), "dest_port"),
            dest_service_name=_text(obj.get("dest_service_name", NO_VALUE), "dest_service_name"),
            dest_service_namespace=_text(
                obj.get("dest_service_namespace", NO_VALUE), "dest_service_namespace"
            ),
            dest_service_port_name=_text(
                obj.get("dest_service_port_name", NO_VALUE), "dest_service_port_name"
            ),
            dest_service_port=_integer(obj.get("dest_service_port", 0), "dest_service_port"),
            proto=_text(obj.get("proto", ""), "proto"),
            reporter=_enum(Reporter, obj.get("reporter", Reporter.UNSPECIFIED.value), "reporter"),
            action=_enum(Action, obj.get("action", Action.UNSPECIFIED.value), "action"),
            policies=PolicyTrace.from_json(obj.get("policies") or {}),
        )


COUNTERS = (
    "packets_in",
    "packets_out",
    "bytes_in",
    "bytes_out",
    "num_connections_started",
    "num_connections_completed",
    "num_connections_live",
)


@dataclass
class Flow:
    """A key with what was seen of it between start_time and end_time (Unix seconds)."""

    key: FlowKey
    start_time: int
    end_time: int
    source_labels: frozenset[str] = field(default_factory=frozenset)
    dest_labels: frozenset[str] = field(default_factory=frozenset)
    packets_in: int = 0
    packets_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    num_connections_started: int = 0
    num_connections_completed: int = 0
    num_connections_live: int = 0

    def merged(self, other: Flow) -> Flow:
        """This flow and `other` (of the same key) as one: counters summed, the time span
        covering both, labels those both carry (Goldmane keeps the intersection)."""
        if other.key != self.key:
            raise RecordError("flows of different keys cannot be merged")
        return replace(
            self,
            start_time=min(self.start_time, other.start_time),
            end_time=max(self.end_time, other.end_time),
            source_labels=self.source_labels & other.source_labels,
            dest_labels=self.dest_labels & other.dest_labels,
            **{c: getattr(self, c) + getattr(other, c) for c in COUNTERS},
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key.to_json(),
            "start_time": self.start_time,
            "end_time": self.end_time,
            "source_labels": sorted(self.source_labels),
            "dest_labels": sorted(self.dest_labels),
            **{c: getattr(self, c) for c in COUNTERS},
        }

    @classmethod
    def from_json(cls, data: Any) -> Flow:
        obj = _mapping(data, "flow")
        flow = cls(
            key=FlowKey.from_json(obj.get("key")),
            start_time=_integer(obj.get("start_time", 0), "start_time"),
            end_time=_integer(obj.get("end_time", 0), "end_time"),
            source_labels=_labels(obj.get("source_labels"), "source_labels"),
            dest_labels=_labels(obj.get("dest_labels"), "dest_labels"),
            **{c: _counter(obj.get(c, 0), c) for c in COUNTERS},
        )
        if flow.end_time < flow.start_time:
            raise RecordError(f"end_time {flow.end_time} is before start_time {flow.start_time}")
        return flow


def labels_of(labels: Mapping[str, str]) -> frozenset[str]:
    """An endpoint's labels as a record carries them: `key=value` strings."""
    return frozenset(f"{k}={v}" for k, v in labels.items())


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise RecordError(f"{what} must be an object, not {_type(value)}")
    return value


def _items(value: Any, what: str) -> Iterable[Any]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise RecordError(f"{what} must be a list, not {_type(value)}")
    return value


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise RecordError(f"{what} must be a string, not {_type(value)}")
    return value


def _integer(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecordError(f"{what} must be an integer, not {_type(value)}")
    return value


def _counter(value: Any, what: str) -> int:
    number = _integer(value, what)
    if number < 0:
        raise RecordError(f"{what} must not be negative, not {number}")
    return number


def _labels(value: Any, what: str) -> frozenset[str]:
    return frozenset(_text(v, what) for v in _items(value, what))


def _enum(enum: type[Any], value: Any, what: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(m.value for m in enum)
        raise RecordError(f"{what} must be one of {allowed}, not {value!r}") from None


def _type(value: Any) -> str:
    return "null" if value is None else type(value).__name__
