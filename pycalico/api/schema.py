"""A small declarative schema for v3 resources.

Each resource kind is described as a tree of field types. `normalize()` turns parsed
YAML/JSON into the canonical form pycalico stores and prints: unknown fields rejected (as
calicoctl's strict decoder does), values type-checked and validated, defaults filled, keys in
Go struct order, and empty values dropped where Go would omit them (`omitempty`). Because
the output of `normalize()` is a fixed point of `normalize()`, encoding is byte-stable.

Resources stay plain dicts; there is no class per kind. That keeps `calicoctl` start-up
cheap and makes the stored JSON and the in-memory form the same thing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# A check returns None when the value is fine, else the reason it is not.
Check = Callable[[Any], str | None]


class GoTag(str):
    """A check failed that Calico makes with a `validate:"..."` struct tag of this name.

    libcalico-go has no message of its own for those: its extractReason words them
    `Reason: failed to validate Field: <Field> because of Tag: <tag> ` (the "Reason: "
    prefix and the trailing space are Calico's), and FieldError fills in the field.
    """


def go_tag(tag: str, check: Check, stricter: Check | None = None) -> Check:
    """`check` (Calico's), failing as Calico's validator does for the struct tag `tag`; then
    `stricter`, pycalico's own rule for what Calico lets through, in pycalico's words."""

    def tagged(value: Any) -> str | None:
        if check(value) is not None:
            return GoTag(tag)
        return None if stricter is None else stricter(value)

    return tagged


class FieldError(ValueError):
    """One invalid field, worded as libcalico-go's ErroredField prints.

    `path` is where the field sits in the JSON document (`spec.ingress[0].source.nets[1]`);
    the message names it as Calico does instead: `field` when the check has a name of its
    own in Calico (its IPPool client says `IPPool.Spec.CIDR`), else the Go name of the last
    path element (`Nets[1]`), which is what libcalico-go's validator reports (the
    validator's StructField, not the whole namespace). A `value` of None prints no value,
    as Calico's ErroredField with a nil Value does; a GoTag reason becomes Calico's
    sentence for a failed struct tag, naming the field.
    """

    def __init__(self, path: str, value: Any, reason: str, field: str | None = None) -> None:
        super().__init__(path, value, reason)
        # A converter may raise without knowing where its value sits (path ""): the type
        # that called it fills the path in, so the name and the message follow from it.
        self.path = path
        self.value = value
        self._reason = reason
        self._field = field

    @property
    def field(self) -> str:
        return self._field if self._field is not None else go_field_name(self.path)

    @property
    def reason(self) -> str:
        if isinstance(self._reason, GoTag):
            return f"Reason: failed to validate Field: {self.field} because of Tag: {self._reason} "
        return self._reason

    def __str__(self) -> str:
        return f"error with field {self.described()}"

    def described(self) -> str:
        text = self.field if self.value is None else f"{self.field} = '{format_value(self.value)}'"
        return f"{text} ({self.reason})" if self.reason else text


class Refusal(FieldError):
    """A refusal Calico's client words as a plain sentence, not as an errored field (`Cannot
    create a Cluster Information resource with a name other than "default"`)."""

    def __str__(self) -> str:
        return self.reason

    def described(self) -> str:
        return self.reason


class ValidationErrors(ValueError):
    """Several invalid fields in one resource, in libcalico-go's ErrorValidation shape."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors = list(errors)
        super().__init__(self.errors)

    def __str__(self) -> str:
        if len(self.errors) == 1:
            return str(self.errors[0])
        return "error with the following fields:\n" + "".join(
            f"-  {e.described()}\n" for e in self.errors
        )


# Go's names for the JSON names' leading lower-case word where Go does not simply capitalise
# it (Calico spells initialisms in capitals: ipipMode is IPIPMode, asNumber ASNumber); the
# rest of a JSON name already carries Go's spelling (peerIP, natOutgoingAddress).
_GO_LEADING_WORD = {
    "as": "AS",
    "aws": "AWS",
    "bgp": "BGP",
    "bpf": "BPF",
    "cidr": "CIDR",
    "cidrs": "CIDRs",
    "dns": "DNS",
    "http": "HTTP",
    "icmp": "ICMP",
    "ip": "IP",
    "ipip": "IPIP",
    "ipv4": "IPv4",
    "ipv6": "IPv6",
    "mac": "MAC",
    "mtu": "MTU",
    "nat": "NAT",
    "ttl": "TTL",
    "uid": "UID",
    "vxlan": "VXLAN",
    "xdp": "XDP",
}
# Whole JSON names whose Go field is not spelt by that rule (FelixConfiguration's
# `nftables...` fields are `Nftables...` in Go but its mode is `NFTablesMode`).
_GO_NAMES = {
    "bpfConntrackMode": "BPFConntrackCleanupMode",
    "bpfMapSizePerCpuConntrack": "BPFMapSizePerCPUConntrack",
    "externalNodesList": "ExternalNodesCIDRList",
    "nftablesMode": "NFTablesMode",
    "qosControls": "QoSControls",
    "tcpEstablished": "TCPEstablished",
    "tcpFinsSeen": "TCPFinsSeen",
    "tcpResetSeen": "TCPResetSeen",
    "tcpSynSent": "TCPSynSent",
    "udpTimeout": "UDPTimeout",
    "icmpTimeout": "ICMPTimeout",
    "wireguardKeepAlive": "WireguardPersistentKeepAlive",
}
_LEADING_WORD = re.compile(r"[a-z0-9]+")
_LAST_ELEMENT = re.compile(r"([^.\[]*)((?:\[[^\]]*\])*)$")


def go_field_name(path: str) -> str:
    """The Go struct field (with any index) that a JSON path ends in: `spec.ipipMode` ->
    `IPIPMode`, `spec.ingress[0].source.nets[1]` -> `Nets[1]`."""
    match = _LAST_ELEMENT.search(path)
    assert match is not None  # the pattern matches the empty string at the end of any path
    name, index = match.groups()
    if name in _GO_NAMES:
        return _GO_NAMES[name] + index
    leading = _LEADING_WORD.match(name)
    if leading is None:
        return name + index
    word = leading.group()
    return _GO_LEADING_WORD.get(word, word.capitalize()) + name[leading.end() :] + index


MAX_VALUE_IN_MESSAGE = 100


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, list):
        # As Go's %v prints a slice: `[Workload LoadBalancer]`.
        text = "[" + " ".join(format_value(v) for v in value) + "]"
    elif isinstance(value, dict):
        import json

        text = json.dumps(value, separators=(",", ":"), default=repr)
    else:
        text = str(value)
    if len(text) > MAX_VALUE_IN_MESSAGE:
        return text[: MAX_VALUE_IN_MESSAGE - 3] + "..."
    return text


def go_struct(*fields: Any) -> str:
    """A Go struct value as `%v` prints it: `{1 250}` (a nil pointer field is `<nil>`)."""
    return "{" + " ".join("<nil>" if f is None else format_value(f) for f in fields) + "}"


def go_map(value: Mapping[str, Any]) -> str:
    """A Go map as `%v` prints it: keys sorted, `map[a:1 b:2]`."""
    return "map[" + " ".join(f"{k}:{format_value(v)}" for k, v in sorted(value.items())) + "]"


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


class Type:
    """Base of all field types."""

    def normalize(self, value: Any, path: str) -> Any:
        raise NotImplementedError

    def is_empty(self, value: Any) -> bool:
        return value is None or value == "" or value is False or value == 0


@dataclass(frozen=True)
class Str(Type):
    checks: tuple[Check, ...] = ()

    def normalize(self, value: Any, path: str) -> Any:
        if not isinstance(value, str):
            raise FieldError(path, value, f"must be a string, not a {type_name(value)}")
        for check in self.checks:
            reason = check(value)
            if reason:
                raise FieldError(path, value, reason)
        return value


@dataclass(frozen=True)
class Enum(Type):
    values: tuple[str, ...]
    # The Go struct tag that checks the value in Calico (`oneof`, `logLevel`...), if any, and
    # what that tag accepts when it is not `values`: a value only pycalico refuses is refused
    # in pycalico's words, not as a failed tag.
    tag: str | None = None
    tag_accepts: tuple[str, ...] | None = None

    def normalize(self, value: Any, path: str) -> Any:
        if value not in self.values or not isinstance(value, str):
            calico_accepts = value in (self.tag_accepts or ())
            if self.tag and not calico_accepts:
                raise FieldError(path, value, GoTag(self.tag))
            raise FieldError(path, value, "must be one of " + ", ".join(self.values))
        return value


@dataclass(frozen=True)
class Int(Type):
    minimum: int | None = None
    maximum: int | None = None
    # The Go struct tags that bound the value in Calico (`gte`, `gt`; `lte`, `lt`), if any.
    min_tag: str | None = None
    max_tag: str | None = None

    def normalize(self, value: Any, path: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise FieldError(path, value, f"must be an integer, not a {type_name(value)}")
        if self.minimum is not None and value < self.minimum:
            low = GoTag(self.min_tag) if self.min_tag else f"must be at least {self.minimum}"
            raise FieldError(path, value, low)
        if self.maximum is not None and value > self.maximum:
            high = GoTag(self.max_tag) if self.max_tag else f"must be at most {self.maximum}"
            raise FieldError(path, value, high)
        return value


@dataclass(frozen=True)
class Float(Type):
    def normalize(self, value: Any, path: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FieldError(path, value, f"must be a number, not a {type_name(value)}")
        if isinstance(value, float):
            if not math.isfinite(value):
                raise FieldError(path, value, "must be a finite number")
            if value.is_integer() and abs(value) < 2**53:
                return int(value)  # Go prints float64 100.0 as 100
        return value


@dataclass(frozen=True)
class Bool(Type):
    def normalize(self, value: Any, path: str) -> Any:
        if not isinstance(value, bool):
            raise FieldError(path, value, f"must be true or false, not a {type_name(value)}")
        return value


@dataclass(frozen=True)
class Custom(Type):
    """A value of any JSON shape, accepted by `convert` (which raises ValueError)."""

    convert: Callable[[Any], Any]

    def normalize(self, value: Any, path: str) -> Any:
        try:
            return self.convert(value)
        except FieldError as exc:
            exc.path = exc.path or path  # a converter may leave the path to its caller
            raise
        except ValidationErrors as exc:
            for error in exc.errors:
                error.path = error.path or path
            raise
        except ValueError as exc:
            # A GoTag reason is kept as one, so that the field is named in it.
            reason = exc.args[0] if exc.args and isinstance(exc.args[0], GoTag) else str(exc)
            raise FieldError(path, value, reason) from None


@dataclass(frozen=True)
class WholeList(Custom):
    """A list that `convert` checks as one value (Calico's checks of a whole list report
    the whole list), empty when it has no items, as ListOf."""

    def is_empty(self, value: Any) -> bool:
        return not value


@dataclass(frozen=True)
class ListOf(Type):
    item: Type
    checks: tuple[Callable[[list[Any]], str | None], ...] = ()

    def normalize(self, value: Any, path: str) -> Any:
        if not isinstance(value, list):
            raise FieldError(path, value, f"must be a list, not a {type_name(value)}")
        # Every item is checked, as Go's validator dives into each and reports them all.
        out, errors = [], []
        for i, v in enumerate(value):
            try:
                out.append(self.item.normalize(v, f"{path}[{i}]"))
            except ValidationErrors as exc:
                errors.extend(exc.errors)
            except FieldError as exc:
                errors.append(exc)
        if errors:
            raise ValidationErrors(errors)
        for check in self.checks:
            reason = check(out)
            if reason:
                raise FieldError(path, value, reason)
        return out

    def is_empty(self, value: Any) -> bool:
        return not value


@dataclass(frozen=True)
class MapOf(Type):
    value_type: Type
    key_check: Check | None = None
    # Checks of the whole map (Go's `labels` tag): the error shows the map as Go prints it.
    checks: tuple[Callable[[dict[str, Any]], str | None], ...] = ()

    def normalize(self, value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            raise FieldError(path, value, f"must be a map, not a {type_name(value)}")
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise FieldError(path, k, "keys must be strings")
            if self.key_check is not None:
                reason = self.key_check(k)
                if reason:
                    raise FieldError(f"{path}[{k}]", k, reason)
            out[k] = self.value_type.normalize(v, f"{path}[{k}]")
        for check in self.checks:
            reason = check(out)
            if reason:
                raise FieldError(path, go_map(out), reason)
        # encoding/json writes map keys sorted; so does pycalico, for identical bytes.
        return dict(sorted(out.items()))

    def is_empty(self, value: Any) -> bool:
        return not value


@dataclass(frozen=True)
class Field:
    name: str
    type: Type
    required: bool = False
    # A default is filled in when the field is absent; a callable gets the parent object
    # (after its other fields were normalised) so defaults can depend on siblings.
    default: Any = None
    # Go's `omitempty` on a non-pointer field: a zero value is dropped on output.
    omitempty: bool = True
    # A required field that is missing: the reason (a GoTag when Calico's check is a struct
    # tag that the Go zero value fails) and the value Calico would print (Go's zero value).
    missing: str = "required field is missing"
    zero: Any = ""


@dataclass(frozen=True)
class Struct(Type):
    fields: tuple[Field, ...]
    # Cross-field rules: return a list of errors for the normalised object.
    checks: tuple[Callable[[dict[str, Any], str], list[FieldError]], ...] = ()
    by_name: Mapping[str, Field] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {f.name: f for f in self.fields})

    def normalize(self, value: Any, path: str) -> Any:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise FieldError(path, value, f"must be an object, not a {type_name(value)}")
        errors: list[FieldError] = []
        for key in value:
            if key not in self.by_name:
                errors.append(FieldError(_join(path, str(key)), value[key], "unknown field"))
        out: dict[str, Any] = {}
        for f in self.fields:
            sub = _join(path, f.name)
            if f.name in value and value[f.name] is not None and not _unset(f, value[f.name]):
                try:
                    v = f.type.normalize(value[f.name], sub)
                except ValidationErrors as exc:
                    errors.extend(exc.errors)
                    continue
                except FieldError as exc:
                    errors.append(exc)
                    continue
                # A zero value in an omitempty field is "unset" in Go: it gets the default.
                if not (f.omitempty and f.type.is_empty(v)):
                    out[f.name] = v
                elif f.required:
                    errors.append(FieldError(sub, f.zero, f.missing))
            elif f.required:
                errors.append(FieldError(sub, f.zero, f.missing))
        if errors:
            raise ValidationErrors(errors)
        for f in self.fields:
            if f.name not in out and f.default is not None:
                out[f.name] = f.default(out) if callable(f.default) else _copy(f.default)
        ordered = {f.name: out[f.name] for f in self.fields if out.get(f.name) is not None}
        for check in self.checks:
            errors.extend(check(ordered, path))
        if errors:
            raise ValidationErrors(errors)
        return ordered

    def is_empty(self, value: Any) -> bool:
        # Go never omits a struct value; only pointers-to-struct that are nil.
        return False


def _unset(f: Field, raw: Any) -> bool:
    """Go's omitempty: a zero value means "not given", so it is neither checked nor kept."""
    if not f.omitempty:
        return False
    if isinstance(raw, str):
        return raw == ""
    if isinstance(raw, bool):
        return raw is False and isinstance(f.type, Bool)
    return isinstance(raw, int) and raw == 0 and not isinstance(f.type, Bool)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _copy(value: Any) -> Any:
    if isinstance(value, list):
        return [_copy(v) for v in value]
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value
