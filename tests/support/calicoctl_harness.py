"""Shared helpers for the calicoctl tests (tests/unit and tests/contract test_calicoctl_*.py).

Two ways to run calicoctl against a private SQLite store:

* `InProcess` calls `pycalico.ctl.main.main(argv)` with stdout/stderr/stdin swapped: a few
  milliseconds per call, so it carries the bulk of the cases;
* `Subprocess` runs the installed console script, which is what users run; it proves the
  entry point, exit codes and that nothing prints a traceback from a real process.

Both isolate the run from the machine: the environment carries only DATASTORE_TYPE and
SQLITE_PATH, and the default config file /etc/calico/calicoctl.cfg cannot interfere (in
process it is redirected to a missing path; subprocess tests are skipped if it exists,
because a child process would read it).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from pycalico.datastore import config as datastore_config
from tests.support.resources import V3, store_documents

CALICOCTL = os.path.join(os.path.dirname(sys.executable), "calicoctl")

# Every variable calicoctl reads for its connection, with and without the CALICO_ prefix.
_CONNECTION_VARS = (
    "DATASTORE_TYPE",
    "SQLITE_PATH",
    "ETCD_ENDPOINTS",
    "ETCD_USERNAME",
    "ETCD_PASSWORD",
    "ETCD_KEY_FILE",
    "ETCD_CERT_FILE",
    "ETCD_CA_CERT_FILE",
    "KUBECONFIG",
    "K8S_API_ENDPOINT",
)


class Result(NamedTuple):
    rc: int
    out: str
    err: str

    def lines(self) -> list[str]:
        return self.out.splitlines()


def _start_store(path: Path) -> None:
    """An empty store, as calico-node leaves at startup: calicoctl's reads need one."""
    from pycalico.datastore.sqlite import SqliteBackend

    SqliteBackend(path, create=True).close()


class InProcess:
    """calicoctl's `main()` in this interpreter, bound to the store at `store`."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.dir = tmp_path
        self.store = tmp_path / "store.db"
        self._monkeypatch = monkeypatch
        for var in _CONNECTION_VARS:
            monkeypatch.delenv(var, raising=False)
            monkeypatch.delenv("CALICO_" + var, raising=False)
        monkeypatch.setenv("DATASTORE_TYPE", "sqlite")
        monkeypatch.setenv("SQLITE_PATH", str(self.store))
        monkeypatch.setattr(
            datastore_config, "DEFAULT_CONFIG_PATH", str(tmp_path / "absent-calicoctl.cfg")
        )
        _start_store(self.store)

    def setenv(self, name: str, value: str) -> None:
        self._monkeypatch.setenv(name, value)

    def run(self, *args: str, stdin: str | bytes | None = None) -> Result:
        from pycalico.ctl.main import main

        data = stdin.encode() if isinstance(stdin, str) else (stdin or b"")
        out, err = io.StringIO(), io.StringIO()
        # A binary-backed stdin, like a real one: calicoctl reads `-f -` as bytes.
        fake_stdin = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")
        saved_stdin = sys.stdin
        sys.stdin = fake_stdin
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    rc = main(list(args))
                except SystemExit as exc:  # a real process would exit with this code
                    rc = exc.code if isinstance(exc.code, int) else 1
        finally:
            sys.stdin = saved_stdin
        return Result(rc, out.getvalue(), err.getvalue())

    def ok(self, *args: str, stdin: str | bytes | None = None) -> Result:
        """Run a command that must succeed with nothing on stderr but warnings (of what
        pycalico accepts and does not enforce)."""
        result = self.run(*args, stdin=stdin)
        errors = [line for line in result.err.splitlines() if not line.startswith("Warning: ")]
        assert (result.rc, errors) == (0, []), result
        return result

    def write(self, name: str, text: str) -> str:
        path = self.dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return str(path)

    def seed(self, text: str) -> None:
        """Store resources through the library, not calicoctl: for objects calicoctl itself
        should not be the writer of (Calico's calicoctl refuses to write ClusterInformation)."""
        store_documents(self.store, text)

    def revision(self) -> int:
        """The store revision: any write, even one later rolled back by hand, bumps it."""
        from pycalico.datastore.sqlite import SqliteBackend

        backend = SqliteBackend(self.store)
        try:
            return backend.revision()
        finally:
            backend.close()


class Subprocess:
    """The installed `calicoctl` console script, bound to the store at `store`."""

    def __init__(self, tmp_path: Path) -> None:
        if os.path.exists(datastore_config.DEFAULT_CONFIG_PATH):
            pytest.skip(
                f"{datastore_config.DEFAULT_CONFIG_PATH} exists and would override the "
                "test's datastore in a child process"
            )
        self.dir = tmp_path
        self.store = tmp_path / "store.db"
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in _CONNECTION_VARS and k.removeprefix("CALICO_") not in _CONNECTION_VARS
        }
        self.env = {**env, "DATASTORE_TYPE": "sqlite", "SQLITE_PATH": str(self.store)}
        _start_store(self.store)

    def run(
        self,
        *args: str,
        stdin: str | bytes | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Result:
        data = stdin.encode() if isinstance(stdin, str) else stdin
        proc = subprocess.run(
            [CALICOCTL, *args],
            input=data,
            capture_output=True,
            env={**self.env, **(env or {})},
            timeout=60,
            check=False,
        )
        return Result(
            proc.returncode,
            proc.stdout.decode("utf-8", "replace"),
            proc.stderr.decode("utf-8", "replace"),
        )

    def popen(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [CALICOCTL, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env
        )


# --- documents ------------------------------------------------------------------------


def resource_yaml(
    kind: str,
    name: str,
    spec: Mapping[str, Any] | None = None,
    namespace: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> str:
    """One YAML document; JSON flow style is valid YAML and keeps the helper trivial."""
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = dict(labels)
    lines = [f"apiVersion: {V3}", f"kind: {kind}", f"metadata: {json.dumps(meta)}"]
    if spec is not None:
        lines.append(f"spec: {json.dumps(spec)}")
    return "\n".join(lines) + "\n"


def pool_yaml(name: str, cidr: str, **spec: Any) -> str:
    return resource_yaml("IPPool", name, {"cidr": cidr, **spec})


def multi(*documents: str) -> str:
    return "---\n".join(documents)


_RESOURCE_VERSION = re.compile(r'(resourceVersion"?: )"\d+"')


def without_resource_versions(text: str) -> str:
    """YAML or JSON output with every resourceVersion value blanked out."""
    return _RESOURCE_VERSION.sub(r'\1"<rv>"', text)


def one_error_line(result: Result) -> str:
    """The contract for a failed command: exit code 1, one line on stderr, no traceback."""
    assert result.rc == 1, result
    assert "Traceback" not in result.out + result.err, result
    # main() turns unexpected exceptions into "internal error: ..." lines: still a bug.
    assert "internal error" not in result.err, result
    assert result.err.endswith("\n") and result.err.count("\n") == 1, result
    assert result.err.strip(), result
    return result.err.rstrip("\n")


def snapshot(ctl: InProcess) -> tuple[int, str]:
    """What "nothing was written" compares: the store revision (bumped by every write,
    even one undone later) and the full pool listing."""
    return ctl.revision(), ctl.ok("get", "ippools", "-o", "json").out
