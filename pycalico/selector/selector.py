"""The public face of a parsed selector, and the cached `parse` entry point."""

from __future__ import annotations

import functools
from collections.abc import Mapping

from pycalico.selector.ast import Node
from pycalico.selector.parser import parse_tree

# Distinct selectors in a cluster number in the hundreds or thousands; the bound only
# stops a stream of one-off selectors (e.g. from an API client) from growing the cache.
_CACHE_SIZE = 8192


class Selector:
    """An immutable, parsed selector.

    Two selectors are equal, and hash alike, exactly when their canonical texts are equal,
    so different spellings of one selector (`a=="b"`, `a == 'b'`) are interchangeable.
    """

    __slots__ = ("_canonical", "_labels_used", "_root", "_unique_id")

    def __init__(self, root: Node) -> None:
        self._root = root
        self._canonical = str(root)
        self._labels_used = root.label_keys()
        self._unique_id: str | None = None

    @property
    def root(self) -> Node:
        """The syntax tree, for code that needs more than evaluation (e.g. indexing)."""
        return self._root

    def evaluate(self, labels: Mapping[str, str]) -> bool:
        """Whether an object carrying `labels` is selected."""
        return self._root.evaluate(labels)

    def labels_used(self) -> frozenset[str]:
        """The label keys the result depends on; other labels never change it."""
        return self._labels_used

    def unique_id(self) -> str:
        """Calico's identity for the selector: "s:" + unpadded base64url(SHA-224("s:" + text))."""
        if self._unique_id is None:
            # Imported here: hashlib loads OpenSSL, which most importers of this package
            # (evaluating selectors only) should not pay for.
            import base64
            import hashlib

            digest = hashlib.sha224(("s:" + self._canonical).encode()).digest()
            self._unique_id = "s:" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        return self._unique_id

    def __str__(self) -> str:
        return self._canonical

    def __repr__(self) -> str:
        return f"parse({self._canonical!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Selector):
            return NotImplemented
        return self._canonical == other._canonical

    def __hash__(self) -> int:
        return hash(self._canonical)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def parse(text: str) -> Selector:
    """Parse selector text; raise SelectorError (a ValueError) if it is invalid.

    Results are cached: selectors are immutable and the same few are parsed over and over.
    """
    if not isinstance(text, str):
        raise TypeError(f"selector must be a str, not {type(text).__name__}")
    return Selector(parse_tree(text))


ALL = parse("all()")
