"""A calicoctl command's connection: config, backend, resource client, version check."""

from __future__ import annotations

from typing import Any

from pycalico import __version__
from pycalico.ctl.errors import CtlError
from pycalico.datastore.resources import ResourceClient

CLIENT_VERSION = "v" + __version__


def _bare_version(version: str) -> str:
    """`v3.30.7-12-gabc` -> `3.30.7`: calicoctl compares versions without `v` and suffix."""
    return version.lstrip("v").split("-", 1)[0]


def connect(
    config_path: str | None, allow_version_mismatch: bool, *, create: bool = False
) -> ResourceClient:
    """`create`: for commands that write resources, a missing SQLite store is made (in an
    existing directory); any other command reports it, naming the path."""
    from pycalico.datastore.config import ConfigError, load_config, open_backend

    try:
        client = ResourceClient(open_backend(load_config(config_path), create=create))
    except ConfigError as exc:
        raise CtlError(str(exc)) from None
    if not allow_version_mismatch:
        _check_version(client)
    return client


def cluster_information(client: ResourceClient) -> dict[str, Any] | None:
    from pycalico.api.registry import resolve

    return client.get(resolve("ClusterInformation"), "default")


def _check_version(client: ResourceClient) -> None:
    info = cluster_information(client)
    cluster_version = (info or {}).get("spec", {}).get("calicoVersion", "")
    if cluster_version and _bare_version(cluster_version) != _bare_version(CLIENT_VERSION):
        raise CtlError(
            f"Version mismatch.\nClient Version:   {CLIENT_VERSION}\n"
            f"Cluster Version:  {cluster_version}\nUse --allow-version-mismatch to override."
        )
