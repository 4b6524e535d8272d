"""ObjectMeta: the `metadata` block every resource carries."""

from __future__ import annotations

from typing import Any

from pycalico.api import checks
from pycalico.api.schema import Custom, Field, FieldError, Int, ListOf, MapOf, Str, Struct, go_map

# How libcalico-go's validator names a resource's name in its errors.
NAME_FIELD = "Metadata.Name"
# Annotations may take this many bytes, keys and values together.
ANNOTATIONS_MAX = 256 * 1024


def label_errors(metadata: dict[str, Any]) -> list[FieldError]:
    """validateObjectMeta's checks of annotations and labels, each reason Kubernetes gives
    (an annotation key is checked in lower case), under Calico's field names."""
    errors = []
    annotations = metadata.get("annotations", {})
    for key in annotations:
        errors.extend(
            FieldError(f"metadata.annotations[{key}]", key, reason, "Metadata.Annotations (key)")
            for reason in checks.qualified_name_errors(key.lower())
        )
    size = sum(len(k.encode()) + len(v.encode()) for k, v in annotations.items())
    if size > ANNOTATIONS_MAX:
        errors.append(
            FieldError(
                "metadata.annotations",
                go_map(annotations),
                f"total size of annotations is too large by {size - ANNOTATIONS_MAX} bytes",
                "Metadata.Annotations (key)",
            )
        )
    for key, value in metadata.get("labels", {}).items():
        where = f"metadata.labels[{key}]"
        errors.extend(
            FieldError(where, key, reason, "Metadata.Labels (label)")
            for reason in checks.qualified_name_errors(key)
        )
        errors.extend(
            FieldError(where, value, reason, "Metadata.Labels (value)")
            for reason in checks.label_value_errors(value)
        )
    return errors


def _json_value(value: object) -> object:
    """Free-form metadata (owner references...): anything JSON can carry, and nothing else."""
    import json

    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise ValueError("must be plain JSON data") from None
    return value


OBJECT_META = Struct(
    (
        Field("name", Str()),
        Field("generateName", Str()),
        Field("namespace", Str((checks.dns1123_label,))),
        Field("selfLink", Str()),
        Field("uid", Str()),
        Field("resourceVersion", Str()),
        Field("generation", Int(minimum=0)),
        Field("creationTimestamp", Str()),
        Field("deletionTimestamp", Str()),
        Field("deletionGracePeriodSeconds", Int(minimum=0)),
        # Their keys and values are checked with the name (label_errors), as Calico does.
        Field("labels", MapOf(Str())),
        Field("annotations", MapOf(Str())),
        Field("ownerReferences", ListOf(Custom(_json_value))),
        Field("finalizers", ListOf(Str())),
        Field("managedFields", ListOf(Custom(_json_value))),
    )
)
