"""whisker-backend's queries over flows (reference flows.md §2, §7): filters, sorting,
pages and filter hints (pure).

`filters` is the JSON object whisker-backend takes URL-encoded: each of `source_names`,
`source_namespaces`, `dest_names`, `dest_namespaces`, `protocols` is a list of
`{"value": ..., "type": "Exact"|"Fuzzy"}` (Fuzzy: the value occurs in the field), combined
with OR; `dest_ports` the same with numbers (`{"port": N}` is read too, Goldmane's
PortMatch); `actions` and `pending_actions` lists of action names; `policies` a list of
`{"kind", "tier", "namespace", "name", "action"}` (each optional; the strings may be plain,
meaning Exact, or matches); `reporter` `Src` or `Dst`. Different keys combine with AND.

Filter values are written as whisker shows them: `Global` for the namespace of what is not
namespaced, `PUBLIC NETWORK` / `PRIVATE NETWORK` for the networks; the raw values (`-`,
`pub`, `pvt`) are accepted as well.

A policy match looks at every hit of the trace, enforced and pending, and at an end-of-tier
hit's trigger, so that `name: deny-all` finds the flows a tier's end denied because
deny-all selected them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pycalico.flows.record import (
    NO_VALUE,
    Action,
    Flow,
    PolicyHit,
    PolicyKind,
    Reporter,
)

GLOBAL = "Global"
NETWORK_NAMES = {"pub": "PUBLIC NETWORK", "pvt": "PRIVATE NETWORK"}
_RAW_NETWORK = {shown: raw for raw, shown in NETWORK_NAMES.items()}


class QueryError(ValueError):
    """A query whisker-backend would refuse: one line saying why (HTTP 400)."""


class MatchType(StrEnum):
    EXACT = "Exact"
    FUZZY = "Fuzzy"


@dataclass(frozen=True)
class StringMatch:
    value: str
    type: MatchType = MatchType.EXACT

    def matches(self, text: str) -> bool:
        if self.type == MatchType.EXACT:
            return text == self.value
        return self.value in text


@dataclass(frozen=True)
class PolicyMatch:
    kind: PolicyKind | None = None
    tier: StringMatch | None = None
    namespace: StringMatch | None = None
    name: StringMatch | None = None
    action: Action | None = None

    def matches(self, hit: PolicyHit) -> bool:
        if self.action is not None and hit.action != self.action:
            return False
        if self.tier is not None and not self.tier.matches(hit.tier):
            return False
        if self._names(hit):
            return True
        return hit.trigger is not None and self._names(hit.trigger)

    def _names(self, hit: PolicyHit) -> bool:
        return (
            (self.kind is None or hit.kind == self.kind)
            and (self.namespace is None or self.namespace.matches(hit.namespace))
            and (self.name is None or self.name.matches(hit.name))
        )


@dataclass(frozen=True)
class Filter:
    source_names: tuple[StringMatch, ...] = ()
    source_namespaces: tuple[StringMatch, ...] = ()
    dest_names: tuple[StringMatch, ...] = ()
    dest_namespaces: tuple[StringMatch, ...] = ()
    protocols: tuple[StringMatch, ...] = ()
    dest_ports: tuple[int, ...] = ()
    actions: tuple[Action, ...] = ()
    pending_actions: tuple[Action, ...] = ()
    policies: tuple[PolicyMatch, ...] = ()
    reporter: Reporter | None = None

    def matches(self, flow: Flow) -> bool:
        key = flow.key
        checks: tuple[tuple[Sequence[StringMatch], str], ...] = (
            (self.source_names, key.source_name),
            (self.source_namespaces, key.source_namespace),
            (self.dest_names, key.dest_name),
            (self.dest_namespaces, key.dest_namespace),
            (self.protocols, key.proto),
        )
        for matches, value in checks:
            if matches and not any(m.matches(value) for m in matches):
                return False
        if self.dest_ports and key.dest_port not in self.dest_ports:
            return False
        if self.actions and key.action not in self.actions:
            return False
        if self.pending_actions and pending_action(flow) not in self.pending_actions:
            return False
        if self.reporter is not None and key.reporter != self.reporter:
            return False
        if self.policies:
            hits = key.policies.enforced + key.policies.pending
            if not any(p.matches(h) for p in self.policies for h in hits):
                return False
        return True


def pending_action(flow: Flow) -> Action:
    """What would have happened had the staged policies been enforced: the action of the
    pending trace's last hit (the one that decided)."""
    pending = flow.key.policies.pending
    return pending[-1].action if pending else Action.UNSPECIFIED


class SortBy(StrEnum):
    TIME = "Time"
    DEST_NAME = "DestName"
    DEST_NAMESPACE = "DestNamespace"
    DEST_TYPE = "DestType"
    SOURCE_NAME = "SourceName"
    SOURCE_NAMESPACE = "SourceNamespace"
    SOURCE_TYPE = "SourceType"


_SORT_FIELDS: dict[SortBy, Callable[[Flow], Any]] = {
    SortBy.DEST_NAME: lambda f: f.key.dest_name,
    SortBy.DEST_NAMESPACE: lambda f: f.key.dest_namespace,
    SortBy.DEST_TYPE: lambda f: f.key.dest_type.value,
    SortBy.SOURCE_NAME: lambda f: f.key.source_name,
    SortBy.SOURCE_NAMESPACE: lambda f: f.key.source_namespace,
    SortBy.SOURCE_TYPE: lambda f: f.key.source_type.value,
}


def _identity(flow: Flow) -> tuple[Any, ...]:
    k = flow.key
    return (k.source_namespace, k.source_name, k.dest_namespace, k.dest_name, k.dest_port,
            k.proto, k.reporter.value, k.action.value)  # fmt: skip


def sort_flows(flows: Iterable[Flow], sort_by: SortBy = SortBy.TIME) -> list[Flow]:
    """Newest first for Time (Goldmane's default); else by the field, ascending, newest
    first among equals. The flows' identities break the remaining ties, so that pages
    are stable."""
    ordered = sorted(flows, key=_identity)
    ordered.sort(key=lambda f: (f.start_time, f.end_time), reverse=True)
    if sort_by != SortBy.TIME:
        ordered.sort(key=_SORT_FIELDS[sort_by])
    return ordered


def page_of(items: Sequence[Any], page: int, page_size: int) -> tuple[list[Any], int]:
    """(the items of page `page`, counted from 0, the number of pages); page size 0 means
    one page holding everything."""
    if page_size == 0:
        return list(items), 1 if items else 0
    pages = math.ceil(len(items) / page_size)
    return list(items[page * page_size : (page + 1) * page_size]), pages


class HintType(StrEnum):
    DEST_NAME = "DestName"
    SOURCE_NAME = "SourceName"
    DEST_NAMESPACE = "DestNamespace"
    SOURCE_NAMESPACE = "SourceNamespace"
    POLICY_TIER = "PolicyTier"
    POLICY_NAME = "PolicyName"
    POLICY_KIND = "PolicyKind"
    POLICY_NAMESPACE = "PolicyNamespace"


def hints(flows: Iterable[Flow], kind: HintType) -> list[str]:
    """The distinct values of one field over `flows`, as whisker shows them, sorted."""
    values: set[str] = set()
    for flow in flows:
        key = flow.key
        if kind == HintType.DEST_NAME:
            values.add(shown_name(key.dest_name))
        elif kind == HintType.SOURCE_NAME:
            values.add(shown_name(key.source_name))
        elif kind == HintType.DEST_NAMESPACE:
            values.add(shown_namespace(key.dest_namespace))
        elif kind == HintType.SOURCE_NAMESPACE:
            values.add(shown_namespace(key.source_namespace))
        else:
            for hit in key.policies.enforced + key.policies.pending:
                for h in (hit, hit.trigger):
                    if h is not None:
                        values.update(_hit_hint(h, kind))
    values.discard("")
    return sorted(values)


def _hit_hint(hit: PolicyHit, kind: HintType) -> list[str]:
    if kind == HintType.POLICY_TIER:
        return [hit.tier]
    if kind == HintType.POLICY_KIND:
        return [hit.kind.value] if hit.kind != PolicyKind.UNSPECIFIED else []
    if kind == HintType.POLICY_NAMESPACE:
        return [hit.namespace]
    return [hit.name]


def shown_namespace(namespace: str) -> str:
    return GLOBAL if namespace in (NO_VALUE, "") else namespace


def shown_name(name: str) -> str:
    return NETWORK_NAMES.get(name, name)


# --- parsing the `filters` parameter ----------------------------------------------------

_STRING_KEYS = ("source_names", "source_namespaces", "dest_names", "dest_namespaces", "protocols")
_KNOWN_KEYS = (*_STRING_KEYS, "dest_ports", "actions", "pending_actions", "policies", "reporter")


def parse_filter(text: str) -> Filter:
    """The `filters` parameter (already URL-decoded): JSON as described above."""
    if not text.strip():
        return Filter()
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise QueryError(f"filters: not JSON: {exc}") from None
    return filter_from_json(data)


def filter_from_json(data: Any) -> Filter:
    obj = _object(data, "filters")
    unknown = [k for k in obj if k not in _KNOWN_KEYS]
    if unknown:
        raise QueryError(f"filters: unknown key '{unknown[0]}' (known: {', '.join(_KNOWN_KEYS)})")
    strings = {
        key: tuple(
            _unshown(key, _string_match(m, f"filters.{key}[{i}]"))
            for i, m in enumerate(_list(obj.get(key), f"filters.{key}"))
        )
        for key in _STRING_KEYS
    }
    reporter = obj.get("reporter")
    return Filter(
        **strings,
        dest_ports=tuple(
            _port(m, f"filters.dest_ports[{i}]")
            for i, m in enumerate(_list(obj.get("dest_ports"), "filters.dest_ports"))
        ),
        actions=_actions(obj.get("actions"), "filters.actions"),
        pending_actions=_actions(obj.get("pending_actions"), "filters.pending_actions"),
        policies=tuple(
            _policy_match(m, f"filters.policies[{i}]")
            for i, m in enumerate(_list(obj.get("policies"), "filters.policies"))
        ),
        reporter=None
        if reporter in (None, "", Reporter.UNSPECIFIED.value)
        else _enum(Reporter, reporter, "filters.reporter"),
    )


def _unshown(key: str, match: StringMatch) -> StringMatch:
    """A value as whisker shows it, turned back into the stored one (Exact matches only:
    a fuzzy `Glo` means what it says)."""
    if match.type != MatchType.EXACT:
        return match
    if key.endswith("namespaces") and match.value == GLOBAL:
        return StringMatch(NO_VALUE)
    if key.endswith("names") and match.value in _RAW_NETWORK:
        return StringMatch(_RAW_NETWORK[match.value])
    return match


def _string_match(value: Any, where: str) -> StringMatch:
    if isinstance(value, str):
        return StringMatch(value)
    obj = _object(value, where)
    _only(obj, ("value", "type"), where)
    text = obj.get("value")
    if not isinstance(text, str):
        raise QueryError(f"{where}.value must be a string")
    kind = obj.get("type", MatchType.EXACT.value)
    return StringMatch(text, _enum(MatchType, kind, f"{where}.type"))


def _port(value: Any, where: str) -> int:
    obj = _object(value, where)
    _only(obj, ("value", "type", "port"), where)
    number = obj.get("port", obj.get("value"))
    if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= 65535:
        raise QueryError(f"{where}: the port must be a number from 0 to 65535")
    if obj.get("type", MatchType.EXACT.value) != MatchType.EXACT.value:
        raise QueryError(f"{where}.type: ports match exactly (Exact)")
    return number


def _policy_match(value: Any, where: str) -> PolicyMatch:
    obj = _object(value, where)
    _only(obj, ("kind", "tier", "namespace", "name", "action"), where)
    kind, action = obj.get("kind"), obj.get("action")

    def text(key: str) -> StringMatch | None:
        raw = obj.get(key)
        return None if raw in (None, "") else _string_match(raw, f"{where}.{key}")

    return PolicyMatch(
        kind=None
        if kind in (None, "", PolicyKind.UNSPECIFIED.value)
        else _enum(PolicyKind, kind, f"{where}.kind"),
        tier=text("tier"),
        namespace=text("namespace"),
        name=text("name"),
        action=None
        if action in (None, "", Action.UNSPECIFIED.value)
        else _enum(Action, action, f"{where}.action"),
    )


def _actions(value: Any, where: str) -> tuple[Action, ...]:
    return tuple(_enum(Action, a, f"{where}[{i}]") for i, a in enumerate(_list(value, where)))


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise QueryError(f"{where} must be a JSON object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise QueryError(f"{where} must be a JSON list")
    return value


def _only(obj: Mapping[str, Any], keys: Sequence[str], where: str) -> None:
    for k in obj:
        if k not in keys:
            raise QueryError(f"{where}: unknown key '{k}' (known: {', '.join(keys)})")


def _enum(enum: type[Any], value: Any, where: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        names = ", ".join(m.value for m in enum if not m.value.endswith("Unspecified"))
        raise QueryError(f"{where}: unknown value {value!r} (one of {names})") from None


# --- the other query parameters ---------------------------------------------------------


@dataclass(frozen=True)
class ListQuery:
    watch: bool = False
    start_time_gte: int = 0
    start_time_lt: int = 0
    sort_by: SortBy = SortBy.TIME
    page: int = 0
    page_size: int = 0
    filter: Filter = field(default_factory=Filter)


@dataclass(frozen=True)
class HintsQuery:
    type: HintType
    start_time_gte: int = 0
    start_time_lt: int = 0
    page: int = 0
    page_size: int = 0
    filter: Filter = field(default_factory=Filter)


_LIST_PARAMS = ("watch", "startTimeGte", "startTimeLt", "sortBy", "page", "pageSize", "filters")
_HINT_PARAMS = ("type", "startTimeGte", "startTimeLt", "page", "pageSize", "filters")


def parse_list_query(params: Mapping[str, list[str]]) -> ListQuery:
    """`GET /flows` parameters (parse_qs's shape: every value a list)."""
    _known(params, _LIST_PARAMS)
    sort = _one(params, "sortBy")
    return ListQuery(
        watch=_boolean(_one(params, "watch"), "watch"),
        start_time_gte=_int(_one(params, "startTimeGte"), "startTimeGte"),
        start_time_lt=_int(_one(params, "startTimeLt"), "startTimeLt"),
        sort_by=SortBy.TIME if not sort else _enum(SortBy, sort, "sortBy"),
        page=_count(_one(params, "page"), "page"),
        page_size=_count(_one(params, "pageSize"), "pageSize"),
        filter=parse_filter(_one(params, "filters")),
    )


def parse_hints_query(params: Mapping[str, list[str]]) -> HintsQuery:
    """`GET /flows-filter-hints` parameters; `type` is required."""
    _known(params, _HINT_PARAMS)
    kind = _one(params, "type")
    if not kind:
        names = ", ".join(m.value for m in HintType)
        raise QueryError(f"type is required (one of {names})")
    return HintsQuery(
        type=_enum(HintType, kind, "type"),
        start_time_gte=_int(_one(params, "startTimeGte"), "startTimeGte"),
        start_time_lt=_int(_one(params, "startTimeLt"), "startTimeLt"),
        page=_count(_one(params, "page"), "page"),
        page_size=_count(_one(params, "pageSize"), "pageSize"),
        filter=parse_filter(_one(params, "filters")),
    )


def _known(params: Mapping[str, list[str]], known: Sequence[str]) -> None:
    for name in params:
        if name not in known:
            raise QueryError(f"unknown query parameter '{name}' (known: {', '.join(known)})")


def _one(params: Mapping[str, list[str]], name: str) -> str:
    values = params.get(name) or []
    if len(values) > 1:
        raise QueryError(f"{name} given {len(values)} times; once at most")
    return values[0] if values else ""


def _boolean(text: str, name: str) -> bool:
    if text in ("", "false", "0"):
        return False
    if text in ("true", "1"):
        return True
    raise QueryError(f"{name} must be true or false, not '{text}'")


def _int(text: str, name: str) -> int:
    if not text:
        return 0
    try:
        return int(text)
    except ValueError:
        raise QueryError(f"{name} must be an integer, not '{text}'") from None


def _count(text: str, name: str) -> int:
    number = _int(text, name)
    if number < 0:
        raise QueryError(f"{name} must not be negative")
    return number
