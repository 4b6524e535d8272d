"""ClusterInformation: the cluster's identity and the datastore-ready flag."""

from __future__ import annotations

from pycalico.api.kind import Kind, singleton_refusal
from pycalico.api.schema import Bool, Field, Str, Struct

CLUSTER_INFORMATION = Kind(
    "ClusterInformation",
    "clusterinformations",
    namespaced=False,
    spec=Struct(
        (
            Field("clusterGUID", Str()),
            Field("clusterType", Str()),
            Field("calicoVersion", Str()),
            Field("datastoreReady", Bool(), omitempty=False),
            Field("variant", Str()),
        )
    ),
    checks=(singleton_refusal("Cluster Information"),),
)
