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


class FieldError(ValueError):
    """One invalid field, worded as libcalico-go's ErroredField prints.

    `path` is where the field sits in the JSON document (`spec.ingress[0].source.nets[1]`);
    the message names it as Calico does instead: `field` when the check has a name of its
    own in Calico (its IPPool client says `IPPool.Spec.CIDR`), else the Go name of the last
    path element (`Nets[1]`), which is what libcalico-go's validator reports (the
    validator's StructField, not the whole namespace). A `value` of None prints no value,
    as Calico's ErroredField with a nil Value does.
    """

    def __init__(self, path: str, value: Any, reason: str, field: str | None = None) -> None:
        self.path = path
        self.value = value
        self.reason = reason
        self.field = field if field is not None else go_field_name(path)
        super().__init__(f"error with field {self.described()}")

    def described(self) -> str:
        text = self.field if self.value is None else f"{self.field} = '{format_value(self.value)}'"
        return f"{text} ({self.reason})" if self.reason else text


class ValidationErrors(ValueError):
    """Several invalid fields in one resource, in libcalico-go's ErrorValidation shape."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors = list(errors)
        if len(self.errors) == 1:
            text = str(self.errors[0])
        else:
            text = "error with the following fields:\n" + "".join(
                f"-  {e.described()}\n" for e in self.errors
            )
        super().__init__(text)


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
    "nftables": "NFTables",
    "ttl": "TTL",
    "uid": "UID",
    "vxlan": "VXLAN",
    "xdp": "XDP",
}
_LEADING_WORD = re.compile(r"[a-z0-9]+")
_LAST_ELEMENT = re.compile(r"([^.\[]*)((?:\[[^\]]*\])*)$")


def go_field_name(path: str) -> str:
    """The Go struct field (with any index) that a JSON path ends in: `spec.ipipMode` ->
    `IPIPMode`, `spec.ingress[0].source.nets[1]` -> `Nets[1]`."""
    match = _LAST_ELEMENT.search(path)
    assert match is not None  # the pattern matches the empty string at the end of any path
    name, index = match.groups()
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

    def normalize(self, value: Any, path: str) -> Any:
        if value not in self.values or not isinstance(value, str):
            raise FieldError(path, value, "must be one of " + ", ".join(self.values))
        return value


@dataclass(frozen=True)
class Int(Type):
    minimum: int | None = None
    maximum: int | None = None

    def normalize(self, value: Any, path: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise FieldError(path, value, f"must be an integer, not a {type_name(value)}")
        if self.minimum is not None and value < self.minimum:
            raise FieldError(path, value, f"must be at least {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise FieldError(path, value, f"must be at most {self.maximum}")
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
        except FieldError:
            raise
        except ValueError as exc:
            raise FieldError(path, value, str(exc)) from None


@dataclass(frozen=True)
class ListOf(Type):
    item: Type
    checks: tuple[Callable[[list[Any]], str | None], ...] = ()

    def normalize(self, value: Any, path: str) -> Any:
        if not isinstance(value, list):
            raise FieldError(path, value, f"must be a list, not a {type_name(value)}")
        out = [self.item.normalize(v, f"{path}[{i}]") for i, v in enumerate(value)]
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
                    errors.append(FieldError(sub, "", "required field is missing"))
            elif f.required:
                errors.append(FieldError(sub, "", "required field is missing"))
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
