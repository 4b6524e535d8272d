"""Reading `-f FILE|DIR|-` into validated resources, all of them or none."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

from pycalico.api.codec import DocumentError, expand_lists, parse_documents
from pycalico.api.schema import ValidationErrors

INPUT_EXTENSIONS = (".yaml", ".yml", ".json")


class InputError(ValueError):
    pass


@dataclass
class Document:
    source: str
    index: int  # 1-based position of the document in its source
    raw: Any


def read_documents(filename: str, recursive: bool = False) -> list[Document]:
    """Every document in a file, a directory of files, or stdin (`-`)."""
    if filename == "-":
        return _documents(_read_stdin(), "stdin")
    if os.path.isdir(filename):
        docs: list[Document] = []
        for path in _directory_files(filename, recursive):
            docs.extend(_documents(_read(path), path))
        return docs
    return _documents(_read(filename), filename)


def _directory_files(directory: str, recursive: bool) -> list[str]:
    if recursive:
        found = [os.path.join(root, f) for root, _, files in os.walk(directory) for f in files]
    else:
        found = [os.path.join(directory, f) for f in os.listdir(directory)]
    return sorted(p for p in found if p.endswith(INPUT_EXTENSIONS) and os.path.isfile(p))


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        raise InputError(f"file does not exist: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InputError(f"cannot read {path}: {reason}") from None


def _read_stdin() -> str:
    # Decoded here, strictly, as files are: the text layer's surrogateescape would let
    # undecodable bytes through to the YAML parser, which then fails with no clear message.
    try:
        return sys.stdin.buffer.read().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"cannot read stdin: {exc}") from None


def _documents(text: str, source: str) -> list[Document]:
    try:
        docs = parse_documents(text, source)
    except DocumentError as exc:
        raise InputError(str(exc)) from None
    try:
        docs = expand_lists(docs)
    except DocumentError as exc:
        raise InputError(f"{source}: {exc}") from None
    return [Document(source, i, doc) for i, doc in enumerate(docs, start=1)]


class InvalidDocuments(InputError):
    """Documents that parsed but that Calico's validator would refuse. calicoctl reports
    these as refused writes (`Failed to apply 'IPPool' resource: [error with field ...]`),
    so they are kept apart from input it cannot read at all."""

    def __init__(
        self, docs: list[Document], failures: list[tuple[Document, ValidationErrors]]
    ) -> None:
        self.docs = docs
        self.failures = failures
        super().__init__(" ".join(str(exc) for _, exc in failures))

    def kinds(self) -> list[str]:
        """The kind of every document of the input (the refused ones and the good ones), as
        calicoctl's 'Failed to apply any ...' sentence counts them."""
        from pycalico.api.registry import by_kind_name

        return [by_kind_name(doc.raw["kind"]).name for doc in self.docs]

    def where(self) -> list[str]:
        """Which document each error is about, with the JSON paths of its fields: Calico's
        line names a field as Go does (`CIDR`), which does not say where it is in a file."""
        return [
            f"{_where(doc)}: {', '.join(e.path for e in exc.errors)}" for doc, exc in self.failures
        ]


def normalize_all(docs: list[Document], namespace: str | None) -> list[dict[str, Any]]:
    """Validate every document before anything is written.

    Raises InvalidDocuments when every failure is a validation error, else InputError for
    the first document that could not be read as a resource."""
    from pycalico.api.resource import normalize

    resources: list[dict[str, Any]] = []
    invalid: list[tuple[Document, ValidationErrors]] = []
    unreadable: list[str] = []
    for doc in docs:
        try:
            resource = normalize(doc.raw, default_namespace=namespace or "default")
        except ValidationErrors as exc:
            invalid.append((doc, exc))
            continue
        except ValueError as exc:
            unreadable.append(f"{_where(doc)}: {exc}")
            continue
        given = resource["metadata"].get("namespace")
        if namespace and given and given != namespace:
            unreadable.append(
                f"{_where(doc)}: namespace '{given}' does not match the -n namespace '{namespace}'"
            )
            continue
        resources.append(resource)
    if unreadable:
        more = len(unreadable) + len(invalid) - 1
        raise InputError(unreadable[0] + (f" (and {more} more invalid documents)" if more else ""))
    if invalid:
        raise InvalidDocuments(docs, invalid)
    return resources


def _where(doc: Document) -> str:
    name = ""
    if isinstance(doc.raw, dict):
        kind = doc.raw.get("kind") or ""
        meta = doc.raw.get("metadata")
        if isinstance(meta, dict) and meta.get("name"):
            # Without a kind, just the name: "(x)", not "( x)".
            name = " (" + " ".join(str(p) for p in (kind, meta["name"]) if p) + ")"
        elif kind:
            name = f" ({kind})"
    return f"{doc.source} document {doc.index}{name}"
