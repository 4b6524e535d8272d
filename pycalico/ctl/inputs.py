"""Reading `-f FILE|DIR|-` into validated resources, all of them or none."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

from pycalico.api.codec import DocumentError, expand_lists, parse_documents

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


def normalize_all(docs: list[Document], namespace: str | None) -> list[dict[str, Any]]:
    """Validate every document before anything is written; the first bad one is reported."""
    from pycalico.api.resource import normalize

    resources: list[dict[str, Any]] = []
    failures: list[str] = []
    for doc in docs:
        try:
            resource = normalize(doc.raw, default_namespace=namespace or "default")
        except ValueError as exc:
            failures.append(f"{_where(doc)}: {exc}")
            continue
        given = resource["metadata"].get("namespace")
        if namespace and given and given != namespace:
            failures.append(
                f"{_where(doc)}: namespace '{given}' does not match the -n namespace '{namespace}'"
            )
            continue
        resources.append(resource)
    if failures:
        more = f" (and {len(failures) - 1} more invalid documents)" if len(failures) > 1 else ""
        raise InputError(failures[0] + more)
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
