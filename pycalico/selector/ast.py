"""The immutable syntax tree of a parsed selector.

Every node evaluates itself against a label mapping and renders its canonical text. The
canonical text is Calico's, character for character, because selectors are identified by a
hash of it (see `Selector.unique_id`), and those identities must agree with Calico's.

Evaluation runs for every endpoint against every policy, so the `evaluate` methods avoid
allocating and use `labels.get(key)` returning None as "absent": label values are strings,
so None never equals a value and is never a member of a value set.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

_NO_KEYS: frozenset[str] = frozenset()


def quote(value: str) -> str:
    """Quote a string literal the way Calico's canonical form does."""
    # Literals have no escapes, so a value containing '"' can only be written in '...'.
    mark = "'" if '"' in value else '"'
    return mark + value + mark


class Node(abc.ABC):
    __slots__ = ()

    @abc.abstractmethod
    def evaluate(self, labels: Mapping[str, str]) -> bool:
        """Whether a set of labels matches this (sub-)expression."""

    @abc.abstractmethod
    def label_keys(self) -> frozenset[str]:
        """The label keys whose presence or value can change the result."""

    @abc.abstractmethod
    def __str__(self) -> str:
        """The canonical text."""


@dataclass(frozen=True, slots=True)
class AllNode(Node):
    def evaluate(self, labels: Mapping[str, str]) -> bool:
        return True

    def label_keys(self) -> frozenset[str]:
        return _NO_KEYS

    def __str__(self) -> str:
        return "all()"


@dataclass(frozen=True, slots=True)
class GlobalNode(Node):
    """`global()`: matches everything here; only a namespaceSelector gives it meaning."""

    def evaluate(self, labels: Mapping[str, str]) -> bool:
        return True

    def label_keys(self) -> frozenset[str]:
        return _NO_KEYS

    def __str__(self) -> str:
        return "global()"


@dataclass(frozen=True, slots=True)
class HasNode(Node):
    label: str

    def evaluate(self, labels: Mapping[str, str]) -> bool:
        return self.label in labels

    def label_keys(self) -> frozenset[str]:
        return frozenset((self.label,))

    def __str__(self) -> str:
        return f"has({self.label})"


@dataclass(frozen=True, slots=True)
class ComparisonNode(Node):
    """`label <op> "value"`, for the operators that take one string.

    Subclasses add no fields, so they inherit the dataclass methods (whose equality
    compares classes too) instead of paying for decoration again at import time.
    """

    label: str
    value: str
    OPERATOR: ClassVar[str]

    def label_keys(self) -> frozenset[str]:
        return frozenset((self.label,))

    def __str__(self) -> str:
        return f"{self.label} {self.OPERATOR} {quote(self.value)}"


class EqualsNode(ComparisonNode):
    __slots__ = ()
    OPERATOR = "=="

    def evaluate(self, labels: Mapping[str, str]) -> bool:
        return labels.get(self.label) == self.value


class NotEqualsNode(ComparisonNode):
    """True when the label is absent, as well as when it holds another value."""

    __slots__ = ()
    OPERATOR = "!="

    def evaluate(self, labels: Mapping[str, str]) -> bool:
        return labels.get(self.label) != self.value


class ContainsNode(ComparisonNode):
    __slots__ = ()
    OPERATOR = "contains"

    def evaluate(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.label)
        return value is not None and self.value in value


class StartsWithNode(ComparisonNode):
    __slots__ = ()
    OPERATOR = "starts with"

    def evaluate(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.label)
        return value is not None and value.startswith(self.value)


class EndsWithNode(ComparisonNode):
    __slots__ = ()
    OPERATOR = "ends with"

    def evaluate(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.label)
        return value is not None and value.endswith(self.value)


@dataclass(frozen=True, slots=True)
class SetNode(Node):
    """`label <op> {"v1", "v2", ...}`; the set may be empty. Subclassed like ComparisonNode."""

    label: str
    values: frozenset[str]
    OPERATOR: ClassVar[str]

    def label_keys(self) -> frozenset[str]:
        return frozenset((self.label,))

    def __str__(self) -> str:
        # Calico sorts and de-duplicates, so the spelling order never changes the identity.
        items = ", ".join(map(quote, sorted(self.values)))
        return f"{self.label} {self.OPERATOR} {{{items}}}"


class InNode(SetNode):
    __slots__ = ()
    OPERATOR = "in"

    def evaluate(self, labels: Mapping[str, str]) -> bool:
        return labels.get(self.label) in self.values


class NotInNode(SetNode):
    """True when the label is absent, as well as when its value is outside the set."""

    __slots__ = ()
    OPERATOR = "not in"

    def evaluate(self, labels: Mapping[str, str]) -> bool:
        return labels.get(self.label) not in self.values


@dataclass(frozen=True, slots=True)
class NotNode(Node):
    operand: Node

    def evaluate(self, labels: Mapping[str, str]) -> bool:
        return not self.operand.evaluate(labels)

    def label_keys(self) -> frozenset[str]:
        return self.operand.label_keys()

    def __str__(self) -> str:
        # No parentheses needed: a binary operand renders its own.
        return f"!{self.operand}"


@dataclass(frozen=True, slots=True)
class AndNode(Node):
    """Two or more operands, kept in source order (evaluation short-circuits in that order)."""

    operands: tuple[Node, ...]

    def evaluate(self, labels: Mapping[str, str]) -> bool:
        # A plain loop rather than all(<generator>): no allocation on the hot path.
        for operand in self.operands:  # noqa: SIM110
            if not operand.evaluate(labels):
                return False
        return True

    def label_keys(self) -> frozenset[str]:
        return frozenset().union(*(operand.label_keys() for operand in self.operands))

    def __str__(self) -> str:
        return "(" + " && ".join(map(str, self.operands)) + ")"


@dataclass(frozen=True, slots=True)
class OrNode(Node):
    """Two or more operands, kept in source order (evaluation short-circuits in that order)."""

    operands: tuple[Node, ...]

    def evaluate(self, labels: Mapping[str, str]) -> bool:
        # A plain loop rather than any(<generator>): no allocation on the hot path.
        for operand in self.operands:  # noqa: SIM110
            if operand.evaluate(labels):
                return True
        return False

    def label_keys(self) -> frozenset[str]:
        return frozenset().union(*(operand.label_keys() for operand in self.operands))

    def __str__(self) -> str:
        return "(" + " || ".join(map(str, self.operands)) + ")"
