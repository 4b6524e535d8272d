"""The etcd backend against real etcd processes: TLS, a three-member cluster losing a member,
an unreachable store, compaction, and calicoctl end to end.

None of this needs root, but each test starts etcd processes of its own, so it runs with the
integration suite. The contract itself is in tests/contract/test_datastore_contract.py.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pycalico.datastore import config as datastore_config
from pycalico.datastore.backend import (
    DatastoreUnavailable,
    Event,
    EventType,
    KeyValue,
    WatchCompacted,
)
from pycalico.datastore.config import ConfigError, DatastoreConfig, open_backend
from pycalico.datastore.etcd import DEFAULT_TIMEOUT, EtcdBackend
from tests.support import etcd_server
from tests.support.datastore_watch import WAIT, next_events
from tests.support.etcd_server import EtcdMember, TlsFiles

pytestmark = pytest.mark.integration

CALICOCTL = os.path.join(os.path.dirname(sys.executable), "calicoctl")
POOL_KEY = "/calico/resources/v3/projectcalico.org/ippools/"


def refused_url() -> str:
    """A loopback URL nothing listens on (the port was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def leader_first(members: list[EtcdMember]) -> list[EtcdMember]:
    """The members, the current raft leader first."""
    statuses = [etcd_server.gateway(m.client_url, "maintenance/status", {}) for m in members]
    ids = [status["header"]["member_id"] for status in statuses]
    leader = ids.index(statuses[0]["leader"])
    return [members[leader], *(m for i, m in enumerate(members) if i != leader)]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EtcdMember]:
    with etcd_server.etcd_server(tmp_path) as member:
        yield member


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return etcd_server.tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_server(tls: TlsFiles, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdMember]:
    with etcd_server.etcd_server(tmp_path_factory.mktemp("etcd-tls"), tls=tls) as member:
        yield member


# --- TLS ----------------------------------------------------------------------------------


def test_tls_with_the_cluster_ca_and_a_client_certificate_reads_writes_and_watches(
    tls_server: EtcdMember, tls: TlsFiles
) -> None:
    with EtcdBackend(
        [tls_server.client_url],
        ca_file=str(tls.ca),
        cert_file=str(tls.client_cert),
        key_file=str(tls.client_key),
    ) as backend:
        start = backend.revision()
        with backend.watch("/calico/tls/", start) as watch:
            revision = backend.create("/calico/tls/a", "v")

            assert backend.get("/calico/tls/a") is not None
            assert next_events(watch, 1) == [Event(EventType.PUT, "/calico/tls/a", "v", revision)]


def test_tls_with_a_wrong_ca_fails_in_one_line_about_certificate_verification(
    tls_server: EtcdMember, tls: TlsFiles
) -> None:
    backend = EtcdBackend(
        [tls_server.client_url],
        ca_file=str(tls.wrong_ca),
        cert_file=str(tls.client_cert),
        key_file=str(tls.client_key),
    )

    with pytest.raises(DatastoreUnavailable) as raised:
        backend.get("/calico/a")

    message = str(raised.value)
    assert "\n" not in message
    assert tls_server.client_url in message
    assert "certificate verification failed" in message


def test_tls_without_a_client_certificate_fails_in_one_line_that_suggests_one(
    tls_server: EtcdMember, tls: TlsFiles
) -> None:
    backend = EtcdBackend([tls_server.client_url], ca_file=str(tls.ca))

    with pytest.raises(DatastoreUnavailable) as raised:
        backend.get("/calico/a")

    assert "\n" not in str(raised.value)
    assert "client certificate" in str(raised.value)


def test_unreadable_tls_files_fail_in_one_line_naming_the_file(tls: TlsFiles) -> None:
    with pytest.raises(DatastoreUnavailable) as raised:
        EtcdBackend(["https://127.0.0.1:2379"], ca_file=str(tls.ca) + ".missing")

    assert str(raised.value) == (
        f"cannot load etcd CA file {tls.ca}.missing: no such file or directory"
    )


# --- a cluster losing members --------------------------------------------------------------


def test_a_three_member_cluster_keeps_serving_and_watching_when_a_member_is_killed(
    tmp_path: Path,
) -> None:
    with etcd_server.etcd_cluster(tmp_path) as members:
        leader, follower, other = leader_first(members)
        # The client talks to a follower first: killing it leaves the raft leader in place.
        with EtcdBackend([m.client_url for m in (follower, other, leader)]) as backend:
            created = backend.create("/calico/a", "1")
            watch = backend.watch("/calico/", created)

            follower.kill()
            updated = backend.update("/calico/a", "2", created)
            added = backend.create("/calico/b", "1")

            assert backend.list("/calico/") == (
                [backend.get("/calico/a"), backend.get("/calico/b")],
                added,
            )
            # The watch moved to another member and went on from where it was.
            assert next_events(watch, 2) == [
                Event(EventType.PUT, "/calico/a", "2", updated),
                Event(EventType.PUT, "/calico/b", "1", added),
            ]
            assert watch.next(timeout=0.2) is None
            watch.close()


def test_a_cluster_whose_leader_is_killed_serves_again_after_the_election(
    tmp_path: Path,
) -> None:
    with etcd_server.etcd_cluster(tmp_path) as members:
        ordered = leader_first(members)
        with EtcdBackend([m.client_url for m in ordered]) as backend:
            backend.create("/calico/a", "1")

            ordered[0].kill()
            # Until the others elect a new leader, requests can time out (a write then may
            # or may not have been applied, so it is reported, not repeated). Reads probe.
            deadline = time.monotonic() + WAIT
            while True:
                try:
                    backend.list("/calico/")
                    break
                except DatastoreUnavailable:
                    assert time.monotonic() < deadline

            revision = backend.create("/calico/b", "1")
            assert backend.get("/calico/b") is not None
            assert backend.revision() == revision


def test_a_watch_resumed_on_another_member_after_a_compaction_raises_watch_compacted(
    tmp_path: Path,
) -> None:
    with etcd_server.etcd_cluster(tmp_path) as members:
        leader, follower, other = leader_first(members)
        with (
            EtcdBackend([follower.client_url, other.client_url]) as watcher,
            EtcdBackend([leader.client_url]) as writer,
        ):
            seen = writer.create("/calico/k0", "v")
            watch = watcher.watch("/calico/", seen - 1)
            assert [event.revision for event in next_events(watch, 1)] == [seen]

            # The watch's member stops answering while the others write and compact.
            follower.pause()
            for i in range(1, 4):
                latest = writer.create(f"/calico/k{i}", "v")
            etcd_server.compact(leader.client_url, latest)
            follower.kill()

            with pytest.raises(WatchCompacted) as raised:
                next_events(watch, 3)

        assert (raised.value.requested, raised.value.oldest) == (seen, latest - 1)


# --- unreachable ---------------------------------------------------------------------------


def test_no_endpoint_answering_is_one_line_within_the_default_timeout(server: EtcdMember) -> None:
    # A stopped process still has its port accepting connections: the silent kind of down.
    server.pause()
    refused = refused_url()
    backend = EtcdBackend([server.client_url, refused, server.client_url])

    started = time.monotonic()
    with pytest.raises(DatastoreUnavailable) as raised:
        backend.list("/calico/")
    elapsed = time.monotonic() - started

    message = str(raised.value)
    assert message.startswith("cannot reach etcd at ")
    assert "\n" not in message
    assert f"{refused}: connection refused" in message
    assert f"{server.client_url}: timed out" in message
    assert elapsed < DEFAULT_TIMEOUT + 1.0  # and scheduling slack


class _ShuttingDownMember(http.server.BaseHTTPRequestHandler):
    """What a member's gateway answers while the member shuts down."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"error": "grpc: the client connection is closing", "code": 1}).encode()
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_member_shutting_down_hands_reads_to_the_next_member(server: EtcdMember) -> None:
    closing = http.server.HTTPServer(("127.0.0.1", 0), _ShuttingDownMember)
    thread = threading.Thread(target=closing.serve_forever, daemon=True)
    thread.start()
    try:
        with EtcdBackend([server.client_url]) as writer:
            revision = writer.create("/calico/a", "v")
        url = f"http://127.0.0.1:{closing.server_address[1]}"
        with EtcdBackend([url, server.client_url]) as backend:
            assert backend.get("/calico/a") == KeyValue("/calico/a", "v", revision, revision)
    finally:
        closing.shutdown()
        closing.server_close()
        thread.join()


def test_refused_endpoints_fail_at_once_in_one_line_also_for_watches() -> None:
    urls = [refused_url(), refused_url()]
    backend = EtcdBackend(urls)

    for call in (lambda: backend.get("/calico/a"), lambda: backend.watch("/calico/", 0)):
        with pytest.raises(DatastoreUnavailable) as raised:
            call()
        assert str(raised.value) == f"cannot reach etcd at {','.join(urls)}: connection refused"


# --- compaction --------------------------------------------------------------------------


def test_watch_from_a_revision_older_than_a_forced_compaction_raises_watch_compacted(
    server: EtcdMember,
) -> None:
    with EtcdBackend([server.client_url]) as backend:
        revisions = [backend.create(f"/calico/k{i}", "v") for i in range(5)]
        etcd_server.compact(server.client_url, revisions[3])

        with pytest.raises(WatchCompacted) as raised, backend.watch("/calico/", 0) as watch:
            watch.next(timeout=WAIT)

        assert (raised.value.requested, raised.value.oldest) == (0, revisions[3] - 1)
        with backend.watch("/calico/", raised.value.oldest) as watch:
            assert [event.revision for event in next_events(watch, 2)] == revisions[3:]


# --- configuration -------------------------------------------------------------------------


def test_open_backend_builds_an_etcd_client_from_comma_separated_endpoints(
    server: EtcdMember,
) -> None:
    refused = refused_url()
    config = DatastoreConfig(
        datastore_type="etcdv3", etcd_endpoints=f"{refused}, {server.client_url}"
    )

    with open_backend(config) as backend:
        assert isinstance(backend, EtcdBackend)
        assert backend.endpoints == [refused, server.client_url]
        assert backend.create("/calico/a", "v") > 0


def test_open_backend_without_endpoints_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"^etcdv3 needs ETCD_ENDPOINTS$"):
        open_backend(DatastoreConfig(datastore_type="etcdv3"))


# --- calicoctl ---------------------------------------------------------------------------


def calicoctl(
    *args: str, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    if os.path.exists(datastore_config.DEFAULT_CONFIG_PATH):
        pytest.skip(f"{datastore_config.DEFAULT_CONFIG_PATH} would override the test's datastore")
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ETCD_", "DATASTORE_", "CALICO_", "SQLITE_"))
    }
    return subprocess.run(
        [CALICOCTL, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**clean, "DATASTORE_TYPE": "etcdv3", **env},
        timeout=60,
        check=False,
    )


def assert_one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


POOL = """apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: pool1
spec:
  cidr: 10.10.0.0/16
  ipipMode: Always
  natOutgoing: true
"""


def test_calicoctl_applies_and_gets_an_ippool_stored_in_calicos_etcd_layout(
    server: EtcdMember,
) -> None:
    env = {"ETCD_ENDPOINTS": server.client_url}

    applied = calicoctl("apply", "-f", "-", env=env, stdin=POOL)
    got = calicoctl("get", "ippool", "pool1", "-o", "json", env=env)

    assert (applied.returncode, applied.stderr) == (0, ""), applied
    assert (got.returncode, got.stderr) == (0, ""), got
    pool = json.loads(got.stdout)
    assert (pool["kind"], pool["metadata"]["name"], pool["spec"]["cidr"]) == (
        "IPPool",
        "pool1",
        "10.10.0.0/16",
    )
    assert (pool["spec"]["ipipMode"], pool["spec"]["natOutgoing"]) == ("Always", True)
    # resourceVersion is the key's etcd mod revision; the stored JSON does not carry it.
    with EtcdBackend([server.client_url]) as backend:
        stored = backend.get(POOL_KEY + "pool1")
    assert stored is not None
    assert pool["metadata"]["resourceVersion"] == str(stored.mod_revision)
    assert "resourceVersion" not in json.loads(stored.value)["metadata"]


def test_calicoctl_over_tls_uses_the_etcd_certificate_variables(
    tls_server: EtcdMember, tls: TlsFiles
) -> None:
    env = {
        "ETCD_ENDPOINTS": tls_server.client_url,
        "ETCD_CA_CERT_FILE": str(tls.ca),
        "ETCD_CERT_FILE": str(tls.client_cert),
        "ETCD_KEY_FILE": str(tls.client_key),
    }

    assert calicoctl("get", "ippools", env=env).returncode == 0
    line = assert_one_error_line(
        calicoctl("get", "ippools", env={**env, "ETCD_CA_CERT_FILE": str(tls.wrong_ca)})
    )
    assert "certificate verification failed" in line


def test_calicoctl_against_an_etcd_that_answers_nothing_fails_in_one_line_within_5_s(
    server: EtcdMember,
) -> None:
    server.pause()

    started = time.monotonic()
    result = calicoctl("get", "nodes", env={"ETCD_ENDPOINTS": server.client_url})
    elapsed = time.monotonic() - started

    assert assert_one_error_line(result) == f"cannot reach etcd at {server.client_url}: timed out"
    # The bound; the client's 4 s budget leaves calicoctl's start-up the margin.
    assert elapsed < 5.0


def test_calicoctl_against_an_unreachable_etcd_fails_in_one_line() -> None:
    url = refused_url()

    line = assert_one_error_line(calicoctl("get", "ippools", env={"ETCD_ENDPOINTS": url}))

    assert line == f"cannot reach etcd at {url}: connection refused"


@pytest.mark.parametrize(
    "value",
    [b"not json", b'{"kind": "IPPool"}', b"\xff\xfe"],
    ids=["text", "no-metadata", "binary"],
)
def test_calicoctl_fails_in_one_line_on_foreign_values_under_its_prefix(
    server: EtcdMember, value: bytes
) -> None:
    etcd_server.put(server.client_url, POOL_KEY + "foreign", value)

    result = calicoctl("get", "ippools", env={"ETCD_ENDPOINTS": server.client_url})
    assert_one_error_line(result)
    assert "foreign" in result.stderr  # the message names the offending key


@pytest.mark.parametrize(
    ("key", "record", "command"),
    [
        (
            "/calico/ipam/v2/assignment/ipv4/block/10.10.0.0-26",
            "IPAM block",
            ("ipam", "show", "--show-blocks"),
        ),
        ("/calico/ipam/v2/handle/h1", "IPAM handle", ("ipam", "release", "--ip=10.10.0.1")),
        ("/calico/resources/v3/projectcalico.org/nodes/n1", "resource", ("get", "nodes")),
    ],
    ids=["block", "handle", "node"],
)
def test_calicoctl_fails_in_one_line_naming_the_key_on_foreign_ipam_and_node_values(
    server: EtcdMember, key: str, record: str, command: tuple[str, ...]
) -> None:
    env = {"ETCD_ENDPOINTS": server.client_url}
    assert calicoctl("apply", "-f", "-", env=env, stdin=POOL).returncode == 0
    # An address of handle h1, so that releasing it reads the handle's record too.
    block = {
        "cidr": "10.10.0.0/26",
        "affinity": "host:n1",
        "allocations": [None, 0] + [None] * 62,
        "unallocated": [0, *range(2, 64)],
        "attributes": [{"handle_id": "h1", "secondary": {}}],
        "deleted": False,
    }
    etcd_server.put(
        server.client_url, "/calico/ipam/v2/assignment/ipv4/block/10.10.0.0-26", json.dumps(block)
    )
    etcd_server.put(
        server.client_url, "/calico/ipam/v2/handle/h1", '{"block": {"10.10.0.0/26": 1}}'
    )
    etcd_server.put(server.client_url, key, b'["not", "calico"]')

    line = assert_one_error_line(calicoctl(*command, env=env))

    assert line == f"cannot read {key}: not a stored Calico {record}"


EVERY_KIND = """apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: pool1}
spec: {cidr: 10.10.0.0/16}
---
apiVersion: projectcalico.org/v3
kind: IPReservation
metadata: {name: res1}
spec: {reservedCIDRs: [10.10.255.0/24]}
---
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: {name: default}
spec: {asNumber: 64512}
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: peer1}
spec: {peerIP: 192.0.2.1, asNumber: 64512}
---
apiVersion: projectcalico.org/v3
kind: BGPFilter
metadata: {name: filter1}
spec: {exportV4: [{action: Reject, matchOperator: In, cidr: 10.0.0.0/8}]}
---
apiVersion: projectcalico.org/v3
kind: FelixConfiguration
metadata: {name: default}
spec: {}
---
apiVersion: projectcalico.org/v3
kind: KubeControllersConfiguration
metadata: {name: default}
spec: {controllers: {}}
---
apiVersion: projectcalico.org/v3
kind: ClusterInformation
metadata: {name: default}
spec: {datastoreReady: true}
---
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: security}
spec: {order: 100}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: allow-all}
spec: {selector: all()}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: security.deny}
spec: {tier: security, selector: all()}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: allow-web, namespace: prod}
spec: {selector: all()}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: security.np, namespace: prod}
spec: {tier: security, selector: all()}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata: {name: gns1}
spec: {nets: [198.51.100.0/24]}
---
apiVersion: projectcalico.org/v3
kind: NetworkSet
metadata: {name: ns1, namespace: prod}
spec: {nets: [198.51.100.0/24]}
---
apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata: {name: hep1}
spec: {node: n1, interfaceName: eth0}
---
apiVersion: projectcalico.org/v3
kind: Profile
metadata: {name: prof1}
spec: {}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: n1}
spec: {}
---
apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata: {name: n1-k8s-web-eth0, namespace: prod}
spec:
  orchestrator: k8s
  node: n1
  pod: web
  endpoint: eth0
  interfaceName: cali0123456789a
  ipNetworks: [10.10.0.1/32]
"""


def test_calicoctl_and_ipam_write_exactly_the_keys_calico_uses_in_etcd(server: EtcdMember) -> None:
    from pycalico.ipam.allocator import Allocator

    applied = calicoctl(
        "apply", "-f", "-", env={"ETCD_ENDPOINTS": server.client_url}, stdin=EVERY_KIND
    )
    assert applied.returncode == 0, applied.stderr
    configured = calicoctl(
        "ipam", "configure", "--strictaffinity=true", env={"ETCD_ENDPOINTS": server.client_url}
    )
    assert configured.returncode == 0, configured.stderr
    with EtcdBackend([server.client_url]) as backend:
        [got] = Allocator(backend).auto_assign(1, 4, "k8s-pod-network.c1", {"node": "n1"}, "n1")
        keys = [kv.key for kv in backend.list("/")[0]]
        config = backend.get("/calico/ipam/v2/config")
    assert config is not None
    assert json.loads(config.value) == {
        "strict_affinity": True,
        "auto_allocate_blocks": True,
        "maxBlocksPerHost": 0,
    }

    block = str(got.network).replace("/", "-")
    resources = "/calico/resources/v3/projectcalico.org/"
    assert keys == [
        f"/calico/ipam/v2/assignment/ipv4/block/{block}",
        "/calico/ipam/v2/config",
        "/calico/ipam/v2/handle/k8s-pod-network.c1",
        f"/calico/ipam/v2/host/n1/ipv4/block/{block}",
        # pycalico's own, outside Calico's resource tree: moved by every create and delete
        # of the kind, so that checks against all the others (overlaps, duplicate peers)
        # are atomic.
        "/calico/pycalico/guards/bgppeers",
        "/calico/pycalico/guards/ippools",
        resources + "bgpconfigurations/default",
        resources + "bgpfilters/filter1",
        resources + "bgppeers/peer1",
        resources + "clusterinformations/default",
        resources + "felixconfigurations/default",
        resources + "globalnetworkpolicies/default.allow-all",
        resources + "globalnetworkpolicies/security.deny",
        resources + "globalnetworksets/gns1",
        resources + "hostendpoints/hep1",
        resources + "ippools/pool1",
        resources + "ipreservations/res1",
        resources + "kubecontrollersconfigurations/default",
        resources + "networkpolicies/prod/default.allow-web",
        resources + "networkpolicies/prod/security.np",
        resources + "networksets/prod/ns1",
        resources + "nodes/n1",
        resources + "profiles/prof1",
        resources + "tiers/security",
        resources + "workloadendpoints/prod/n1-k8s-web-eth0",
    ]
