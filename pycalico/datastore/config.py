"""Which datastore to use: CalicoAPIConfig file or environment, as calicoctl reads them."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from pycalico.datastore.backend import Backend

DEFAULT_CONFIG_PATH = "/etc/calico/calicoctl.cfg"
DEFAULT_SQLITE_PATH = "/var/lib/calico/pycalico.db"
SUPPORTED_TYPES = ("sqlite", "etcdv3")

# CalicoAPIConfig spec field -> environment variable (also read with a CALICO_ prefix).
_SPEC_ENV = {
    "datastoreType": "DATASTORE_TYPE",
    "sqlitePath": "SQLITE_PATH",
    "etcdEndpoints": "ETCD_ENDPOINTS",
    "etcdUsername": "ETCD_USERNAME",
    "etcdPassword": "ETCD_PASSWORD",
    "etcdKeyFile": "ETCD_KEY_FILE",
    "etcdCertFile": "ETCD_CERT_FILE",
    "etcdCACertFile": "ETCD_CA_CERT_FILE",
}


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class DatastoreConfig:
    datastore_type: str = "sqlite"
    sqlite_path: str = DEFAULT_SQLITE_PATH
    etcd_endpoints: str = ""
    etcd_username: str = ""
    etcd_password: str = ""
    etcd_key_file: str = ""
    etcd_cert_file: str = ""
    etcd_ca_cert_file: str = ""


def load_config(path: str | None = None, env: Mapping[str, str] | None = None) -> DatastoreConfig:
    """Read `path` (default: /etc/calico/calicoctl.cfg if it exists), else the environment."""
    env = os.environ if env is None else env
    if path is None and os.path.exists(DEFAULT_CONFIG_PATH):
        path = DEFAULT_CONFIG_PATH
    if path is not None:
        return _from_spec(_read_file(path))
    return config_from_env(env)


def config_from_env(env: Mapping[str, str]) -> DatastoreConfig:
    spec = {}
    for field, var in _SPEC_ENV.items():
        value = env.get(var) or env.get("CALICO_" + var)
        if value:
            spec[field] = value
    return _from_spec(spec)


def _from_spec(spec: Mapping[str, str]) -> DatastoreConfig:
    kwargs = {
        "datastore_type": spec.get("datastoreType") or "sqlite",
        "sqlite_path": spec.get("sqlitePath") or DEFAULT_SQLITE_PATH,
        "etcd_endpoints": spec.get("etcdEndpoints", ""),
        "etcd_username": spec.get("etcdUsername", ""),
        "etcd_password": spec.get("etcdPassword", ""),
        "etcd_key_file": spec.get("etcdKeyFile", ""),
        "etcd_cert_file": spec.get("etcdCertFile", ""),
        "etcd_ca_cert_file": spec.get("etcdCACertFile", ""),
    }
    if kwargs["datastore_type"] not in SUPPORTED_TYPES:
        raise ConfigError(
            f"unsupported datastoreType '{kwargs['datastore_type']}' "
            f"(pycalico supports: {', '.join(SUPPORTED_TYPES)})"
        )
    return DatastoreConfig(**kwargs)


def _read_file(path: str) -> dict[str, str]:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        raise ConfigError(f"Error reading config file: {path}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"invalid config file: {path} is not UTF-8 text") from None
    from pycalico.api.codec import DocumentError, parse_documents

    try:
        docs = parse_documents(text, path)
    except DocumentError as exc:
        raise ConfigError(f"invalid config file: {exc}") from None
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise ConfigError(f"invalid config file: {path} must hold one CalicoAPIConfig document")
    doc = docs[0]
    if doc.get("apiVersion") != "projectcalico.org/v3":
        raise ConfigError(f"invalid config file: unknown APIVersion '{doc.get('apiVersion', '')}'")
    if doc.get("kind") != "CalicoAPIConfig":
        raise ConfigError(
            f"invalid config file: expected kind 'CalicoAPIConfig', got '{doc.get('kind', '')}'"
        )
    unknown = set(doc) - {"apiVersion", "kind", "metadata", "spec"}
    spec = doc.get("spec") or {}
    if not isinstance(spec, dict):
        raise ConfigError("invalid config file: spec must be a mapping")
    unknown |= {f"spec.{k}" for k in spec if k not in _SPEC_ENV}
    if unknown:
        raise ConfigError(f"invalid config file: unknown field {sorted(unknown)[0]}")
    bad = [k for k, v in spec.items() if not isinstance(v, str)]
    if bad:
        raise ConfigError(f"invalid config file: spec.{bad[0]} must be a string")
    return spec


def open_backend(config: DatastoreConfig, *, create: bool = False) -> Backend:
    """The configured store. `create`: a missing SQLite file is made (in an existing
    directory) rather than reported; only calico-node's startup and calicoctl's writes ask,
    so that a mistyped path elsewhere fails instead of starting an empty store."""
    if config.datastore_type == "sqlite":
        from pycalico.datastore.sqlite import SqliteBackend

        return SqliteBackend(config.sqlite_path, create=create)
    if config.datastore_type == "etcdv3":
        return _open_etcd(config)
    raise ConfigError(f"unsupported datastoreType '{config.datastore_type}'")


def _open_etcd(config: DatastoreConfig) -> Backend:
    endpoints = [url.strip() for url in config.etcd_endpoints.split(",") if url.strip()]
    if not endpoints:
        raise ConfigError("etcdv3 needs ETCD_ENDPOINTS")
    if config.etcd_username or config.etcd_password:
        # Refused rather than ignored: connecting without them would look like a bug in etcd.
        raise ConfigError(
            "etcd username/password authentication is not supported by pycalico; "
            "use client certificates (ETCD_CERT_FILE, ETCD_KEY_FILE)"
        )
    from pycalico.datastore.etcd import EtcdBackend

    return EtcdBackend(
        endpoints,
        ca_file=config.etcd_ca_cert_file or None,
        cert_file=config.etcd_cert_file or None,
        key_file=config.etcd_key_file or None,
    )
