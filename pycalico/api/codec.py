"""Reading and writing resources as YAML and JSON, the way calicoctl does.

Input: one or more documents (`---`), JSON or YAML, with `kind: List` (or `<Kind>List`)
expanded into its items. Output: YAML with keys sorted (calicoctl converts JSON to YAML,
which sorts), JSON indented by two spaces in struct order with Go's HTML escaping.
"""

from __future__ import annotations

import json
from typing import Any

_YAML_LOADER: Any = None


class DocumentError(ValueError):
    """A file that cannot be decoded at all."""


def _loader() -> Any:
    """A strict YAML loader: no timestamp magic, duplicate keys rejected."""
    global _YAML_LOADER
    if _YAML_LOADER is None:
        import yaml

        base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

        class StrictLoader(base):  # type: ignore[misc, valid-type]
            pass

        # Timestamps stay strings (creationTimestamp must round-trip as written).
        StrictLoader.yaml_implicit_resolvers = {
            first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
            for first, resolvers in base.yaml_implicit_resolvers.items()
        }

        def construct_mapping(loader: Any, node: Any) -> dict[Any, Any]:
            loader.flatten_mapping(node)
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = loader.construct_object(key_node, deep=True)
                if isinstance(key, list | dict):
                    raise yaml.constructor.ConstructorError(
                        None, None, "a mapping key must be a scalar", key_node.start_mark
                    )
                if key in result:
                    mark = key_node.start_mark
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r}", mark
                    )
                result[key] = loader.construct_object(value_node, deep=True)
            return result

        StrictLoader.add_constructor("tag:yaml.org,2002:map", construct_mapping)
        _YAML_LOADER = StrictLoader
    return _YAML_LOADER


def parse_documents(text: str, source: str) -> list[Any]:
    """Decode every document in `text`; `source` names the input in error messages."""
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            json_docs: list[Any] | None = _json_documents(stripped)
        except RecursionError:
            raise DocumentError(f"{source}: cannot parse JSON: nested too deeply") from None
        except ValueError:
            json_docs = None  # not pure JSON: YAML is a superset, let its parser report it
        if json_docs is not None:
            return _checked_text(json_docs, source)
    import yaml

    try:
        if "&" in text and any(
            isinstance(e, yaml.AliasEvent) for e in yaml.parse(text, Loader=_loader())
        ):
            # Resources never need them, and they let a tiny file expand without bound.
            raise DocumentError(f"{source}: YAML anchors and aliases are not supported")
        docs = list(yaml.load_all(text, Loader=_loader()))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        raise DocumentError(f"{source}: cannot parse YAML: {problem}{where}") from None
    except yaml.YAMLError as exc:
        raise DocumentError(f"{source}: cannot parse YAML: {exc}") from None
    except DocumentError:
        raise
    except (ValueError, RecursionError) as exc:  # e.g. an integer too long to convert
        raise DocumentError(f"{source}: cannot parse YAML: {_one_line(exc)}") from None
    return _checked_text([d for d in docs if d is not None], source)


def _one_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _checked_text(docs: list[Any], source: str) -> list[Any]:
    """Reject text that cannot be stored or printed (lone UTF-16 surrogates from JSON escapes)."""
    try:
        json.dumps(docs, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise DocumentError(f"{source}: invalid text: lone surrogate character") from None
    return docs


def _json_documents(text: str) -> list[Any]:
    decoder = json.JSONDecoder()
    docs, pos = [], 0
    while pos < len(text):
        doc, pos = decoder.raw_decode(text, pos)
        docs.append(doc)
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
    return docs


def expand_lists(docs: list[Any]) -> list[Any]:
    """Replace `kind: List` / `kind: <Kind>List` documents by their items."""
    out: list[Any] = []
    for doc in docs:
        kind = doc.get("kind") if isinstance(doc, dict) else None
        if isinstance(kind, str) and kind.endswith("List") and "items" in doc:
            items = doc["items"] or []
            if not isinstance(items, list):
                raise DocumentError(f"{kind}: items must be a list")
            out.extend(items)
        else:
            out.append(doc)
    return out


def dump_json(obj: Any) -> str:
    text = json.dumps(obj, indent=2, ensure_ascii=False)
    # encoding/json escapes these for HTML safety; calicoctl output carries the escapes.
    return (
        text.replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


_YAML_DUMPER: Any = None


def _dumper() -> Any:
    """go-yaml's quoting: strings that would read back as another type get double quotes."""
    global _YAML_DUMPER
    if _YAML_DUMPER is None:
        import yaml

        base = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

        class GoStyleDumper(base):  # type: ignore[misc, valid-type]
            pass

        def represent_str(dumper: Any, data: str) -> Any:
            plain_tag = dumper.resolve(yaml.ScalarNode, data, (True, False))
            style = '"' if plain_tag != "tag:yaml.org,2002:str" else None
            if "\n" in data:
                style = "|"  # go-yaml writes multi-line strings as literal blocks
            return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)

        GoStyleDumper.add_representer(str, represent_str)
        _YAML_DUMPER = GoStyleDumper
    return _YAML_DUMPER


def dump_yaml(obj: Any) -> str:
    import yaml

    return yaml.dump(
        obj,
        Dumper=_dumper(),
        sort_keys=True,
        default_flow_style=False,
        allow_unicode=True,
        width=1 << 20,
    )
