"""ObjectMeta: the `metadata` block every resource carries."""

from __future__ import annotations

from pycalico.api import checks
from pycalico.api.schema import Custom, Field, Int, ListOf, MapOf, Str, Struct

# How libcalico-go's validator names a resource's name in its errors.
NAME_FIELD = "Metadata.Name"


def _json_value(value: object) -> object:
    """Free-form metadata (owner references...): anything JSON can carry, and nothing else."""
    import json

    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise ValueError("must be plain JSON data") from None
    return value


def _label_map() -> MapOf:
    return MapOf(Str((checks.label_value,)), key_check=checks.label_key)


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
        Field("labels", _label_map()),
        Field("annotations", MapOf(Str(), key_check=checks.annotation_key)),
        Field("ownerReferences", ListOf(Custom(_json_value))),
        Field("finalizers", ListOf(Str())),
        Field("managedFields", ListOf(Custom(_json_value))),
    )
)
