"""Bad input of every sort: one line on stderr naming what is wrong, exit 1, nothing written.

Each case runs against a store that already holds one pool (`existing`, 10.200.0.0/16) so
that patch/label have a target and "nothing written" is checked against real content:
the store revision and the full `get ippools -o json` must be identical afterwards, and
every file the case wrote (a corrupt store, a config) must be left byte for byte as it was.

`{dir}` in a case is the test's temporary directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.calicoctl_harness import (
    InProcess,
    multi,
    one_error_line,
    pool_yaml,
    resource_yaml,
    snapshot,
)

V3 = "apiVersion: projectcalico.org/v3\n"
EXISTING = pool_yaml("existing", "10.200.0.0/16")
# Random-looking bytes without a valid SQLite header.
GARBAGE = bytes((i * 151 + 7) % 256 for i in range(8192))


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    expect: tuple[str, ...]
    stdin: str | bytes | None = None
    files: dict[str, str | bytes] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)


def apply_file(case_id: str, text: str | bytes, *expect: str) -> Case:
    """`calicoctl apply -f {dir}/in.yaml`; the message must name the file."""
    return Case(
        case_id,
        ("apply", "-f", "{dir}/in.yaml"),
        ("{dir}/in.yaml", *expect),
        files={"in.yaml": text},
    )


def invalid_file(case_id: str, text: str, *expect: str, kind: str = "IPPool") -> Case:
    """`calicoctl apply -f {dir}/in.yaml` of one document Calico's validator refuses: the
    line is calicoctl's for a refused resource, naming the field as libcalico-go does."""
    return Case(
        case_id,
        ("apply", "-f", "{dir}/in.yaml"),
        (f"Failed to apply '{kind}' resource: [error with field ", *expect),
        files={"in.yaml": text},
    )


def apply_batch(case_id: str, text: str, *expect: str) -> Case:
    """A batch that fails against stored state: reported as calicoctl reports a failed write
    (by resource, not by file), before any document of the batch is written."""
    return Case(
        case_id,
        ("apply", "-f", "{dir}/in.yaml"),
        ("Failed to apply any 'IPPool' resources: [error with field IPPool.Spec.CIDR", *expect),
        files={"in.yaml": text},
    )


def pool_doc(spec: str, meta: str = "{name: p}") -> str:
    return f"{V3}kind: IPPool\nmetadata: {meta}\nspec: {spec}\n"


def gnp_rule(rule: str) -> str:
    return f"{V3}kind: GlobalNetworkPolicy\nmetadata: {{name: p}}\nspec:\n  ingress:\n  - {rule}\n"


CASES: list[Case] = [
    # --- documents that do not parse --------------------------------------------------------
    apply_file(
        "yaml-syntax",
        f"{V3}kind: IPPool\nmetadata: {{name: x\n",
        "cannot parse YAML",
        "line 4",
    ),
    apply_file(
        "yaml-tab-indent",
        f"{V3}kind: IPPool\nmetadata:\n\tname: x\n",
        "cannot parse YAML",
        "line 4",
    ),
    apply_file("yaml-duplicate-key", f"{V3}kind: IPPool\nkind: IPPool\n", "duplicate key 'kind'"),
    apply_file("not-utf8-file", b"\xff\xfe\x00", "cannot read", "utf-8"),
    Case("not-utf8-stdin", ("apply", "-f", "-"), ("cannot read stdin",), stdin=b"\xff\xfe\x00"),
    apply_file("list-items-not-a-list", f"{V3}kind: List\nitems: 5\n", "items must be a list"),
    apply_file("document-not-a-mapping", "- 1\n- 2\n", "document 1", "mapping"),
    apply_file("empty-file", "# only a comment\n", "No resources specified in file"),
    # --- type metadata ------------------------------------------------------------------------
    apply_file(
        "unknown-kind",
        f"{V3}kind: IPPoool\nmetadata: {{name: x}}\n",
        "document 1",
        "Unknown resource type (IPPoool) and/or version (projectcalico.org/v3)",
    ),
    apply_file(
        "wrong-apiversion",
        "apiVersion: projectcalico.org/v2\nkind: IPPool\nmetadata: {name: x}\n",
        "(IPPool x)",
        "Unknown resource type (IPPool) and/or version (projectcalico.org/v2)",
    ),
    apply_file(
        "missing-apiversion", "kind: IPPool\nmetadata: {name: x}\n", "(IPPool x)", "'apiVersion'"
    ),
    apply_file("missing-kind", f"{V3}metadata: {{name: x}}\n", "document 1 (x)", "'kind'"),
    # --- metadata -------------------------------------------------------------------------------
    invalid_file(
        "missing-name", pool_doc("{cidr: 10.1.0.0/16}", "{}"), "Metadata.Name = '' (name is"
    ),
    invalid_file(
        "name-uppercase",
        pool_doc("{cidr: 10.1.0.0/16}", "{name: Pool-A}"),
        "Metadata.Name = 'Pool-A' (name must consist of lower case alphanumeric characters, "
        "'-' or '.' (regex: ",
    ),
    invalid_file(
        "name-underscore",
        pool_doc("{cidr: 10.1.0.0/16}", "{name: pool_a}"),
        "Metadata.Name = 'pool_a'",
    ),
    invalid_file(
        "name-too-long",
        pool_doc("{cidr: 10.1.0.0/16}", "{name: " + "a" * 254 + "}"),
        "Metadata.Name = 'aaa",
        "(name is too long by 1 bytes)]",
    ),
    invalid_file(
        "cluster-scoped-with-namespace",
        pool_doc("{cidr: 10.1.0.0/16}", "{name: p, namespace: prod}"),
        "Namespace = 'prod' (IPPool is not namespaced)",
    ),
    invalid_file(
        "invalid-label-key",
        pool_doc("{cidr: 10.1.0.0/16}", '{name: p, labels: {"bad key!": v}}'),
        "Metadata.Labels (label) = 'bad key!' (name part must consist of alphanumeric ",
    ),
    Case(
        "create-with-resourceversion",
        ("create", "-f", "-"),
        ("Failed to create 'IPPool' resource: [error with field Metadata.ResourceVersion = '7'",),
        stdin=pool_doc("{cidr: 10.1.0.0/16}", '{name: p, resourceVersion: "7"}'),
    ),
    Case(
        "namespace-mismatch",
        ("apply", "-f", "{dir}/in.yaml", "-n", "dev"),
        ("{dir}/in.yaml", "namespace 'prod' does not match", "'dev'"),
        files={"in.yaml": resource_yaml("NetworkSet", "s", {}, namespace="prod")},
    ),
    # --- spec fields ----------------------------------------------------------------------------
    invalid_file(
        "unknown-spec-field", pool_doc("{cidr: 10.1.0.0/16, cidrr: x}"), "Cidrr = 'x' (unknown"
    ),
    invalid_file(
        "unknown-top-level-field",
        f"{V3}kind: IPPool\nmetadata: {{name: p}}\nspec: {{cidr: 10.1.0.0/16}}\nspecs: {{}}\n",
        "Specs = '{}' (unknown field)]",
    ),
    invalid_file(
        "blocksize-not-int",
        pool_doc("{cidr: 10.1.0.0/16, blockSize: abc}"),
        "BlockSize = 'abc'",
    ),
    invalid_file(
        "natoutgoing-not-bool",
        pool_doc("{cidr: 10.1.0.0/16, natOutgoing: yes-please}"),
        "NATOutgoing = 'yes-please'",
    ),
    invalid_file(
        "cidr-not-ip",
        pool_doc("{cidr: ten.one/16}"),
        "IPPool.Spec.CIDR = 'ten.one/16' (IPPool CIDR must be a valid subnet)]",
    ),
    invalid_file(
        "cidr-host-bits",
        pool_doc("{cidr: 10.1.0.1/16}"),
        "IPPool.Spec.CIDR = '10.1.0.0/16' (IPPool CIDR is not strictly masked)]",
    ),
    invalid_file(
        "blocksize-19",
        pool_doc("{cidr: 10.1.0.0/16, blockSize: 19}"),
        "IPPool.Spec.BlockSize = '19' (IPv4 block size must be between 20 and 32)]",
    ),
    invalid_file(
        "blocksize-33",
        pool_doc("{cidr: 10.1.0.0/16, blockSize: 33}"),
        "IPPool.Spec.BlockSize = '33' (IPv4 block size must be between 20 and 32)]",
    ),
    invalid_file(
        "pool-smaller-than-block",
        pool_doc("{cidr: 10.1.0.0/30}"),
        "IPPool.Spec.CIDR = '10.1.0.0/30' (IP pool size is too small for use with Calico IPAM. "
        "It must be equal to or greater than the block size.)]",
    ),
    invalid_file(
        "ipip-and-vxlan",
        pool_doc("{cidr: 10.1.0.0/16, ipipMode: Always, vxlanMode: CrossSubnet}"),
        "IPPool.Spec.VXLANMode = 'CrossSubnet' (Cannot enable both VXLAN and IPIP on the same "
        "IPPool)]",
    ),
    invalid_file(
        "ipv6-with-ipip",
        pool_doc('{cidr: "fd00:1::/64", ipipMode: Always}'),
        "IPPool.Spec.IPIPMode = 'Always' (IPIP is not supported on an IPv6 IP pool)]",
    ),
    invalid_file(
        "link-local-pool",
        pool_doc("{cidr: 169.254.0.0/16}"),
        "IPPool.Spec.CIDR = '169.254.0.0/16' "
        "(IPPool CIDR overlaps with IPv4 Link Local range 169.254.0.0/16)]",
    ),
    invalid_file(
        "bad-node-selector",
        pool_doc('{cidr: 10.1.0.0/16, nodeSelector: "zone == "}'),
        "NodeSelector = 'zone == '",
        "selector",
    ),
    invalid_file(
        "policy-port-out-of-range",
        gnp_rule("{action: Allow, protocol: TCP, destination: {ports: [70000]}}"),
        "Ports[0] = '70000'",
        kind="GlobalNetworkPolicy",
    ),
    invalid_file(
        "policy-ports-without-protocol",
        gnp_rule("{action: Allow, destination: {ports: [80]}}"),
        "Destination.Ports = '[80]' "
        "(rules that specify ports must set protocol to TCP or UDP or SCTP)]",
        kind="GlobalNetworkPolicy",
    ),
    invalid_file(
        "policy-icmp-without-icmp-protocol",
        gnp_rule("{action: Allow, protocol: TCP, icmp: {type: 8}}"),
        "ICMP = ",
        "(rules that specify ICMP fields must set protocol to ICMP)]",
        kind="GlobalNetworkPolicy",
    ),
    invalid_file(
        "policy-in-other-tier-without-prefix",
        f"{V3}kind: GlobalNetworkPolicy\nmetadata: {{name: p}}\nspec: {{tier: security}}\n",
        "Metadata.Name = 'p'",
        "security.",
        kind="GlobalNetworkPolicy",
    ),
    invalid_file(
        "node-empty-bgp",
        f"{V3}kind: Node\nmetadata: {{name: n}}\nspec: {{bgp: {{}}}}\n",
        "BGP = '&{<nil>    }' (Spec.BGP should not be empty)]",
        kind="Node",
    ),
    # --- whole batches: one bad document means nothing is written ------------------------------
    apply_batch(
        "overlap-within-batch",
        multi(pool_yaml("a", "10.1.0.0/16"), pool_yaml("b", "10.1.128.0/24")),
        "IPPool(b) CIDR overlaps with IPPool(a) CIDR 10.1.0.0/16",
    ),
    apply_batch(
        "overlap-with-stored-pool",
        multi(pool_yaml("a", "10.1.0.0/16"), pool_yaml("b", "10.200.1.0/24")),
        "IPPool(b) CIDR overlaps with IPPool(existing)",
    ),
    apply_batch(
        "cidr-change-within-batch",
        multi(pool_yaml("a", "10.1.0.0/16"), pool_yaml("existing", "10.201.0.0/16")),
        "IPPool CIDR cannot be modified",
    ),
    # --- command line -------------------------------------------------------------------------
    Case(
        "unknown-flag",
        ("get", "ippool", "--bogus"),
        ("Invalid option: 'calicoctl get ippool --bogus'", "--help"),
    ),
    Case("unknown-command", ("frobnicate",), ("Invalid option: 'calicoctl frobnicate'",)),
    Case("bad-log-level", ("-l", "loud", "get", "ippools"), ("Invalid option", "loud")),
    Case(
        "output-format-xml", ("get", "ippools", "-o", "xml"), ("unrecognized output format 'xml'",)
    ),
    Case(
        "unknown-custom-column",
        ("get", "ippools", "-o", "custom-columns=NAME,COLOUR"),
        ("unknown column 'COLOUR'",),
    ),
    Case("bad-get-selector", ("get", "ippools", "-l", "team =="), ("invalid selector 'team =='",)),
    Case("all-and-one-namespace", ("get", "np", "-A", "-n", "x"), ("Invalid option", "-A")),
    Case(
        "all-namespaces-with-name",
        ("get", "np", "x", "-A"),
        ("cannot use --all-namespace flag for getting a single resource",),
    ),
    Case(
        "missing-input-file",
        ("apply", "-f", "{dir}/nope.yaml"),
        ("file does not exist: {dir}/nope.yaml",),
    ),
    Case("create-without-file", ("create",), ("Invalid option: 'calicoctl create'",)),
    # --- patch and label ----------------------------------------------------------------------
    Case(
        "patch-invalid-json",
        ("patch", "ippool", "existing", "-p", '{"spec": '),
        ("invalid patch", "JSON"),
    ),
    Case("patch-not-an-object", ("patch", "ippool", "existing", "-p", "[1]"), ("JSON object",)),
    Case(
        "patch-makes-resource-invalid",
        ("patch", "ippool", "existing", "-p", '{"spec":{"cidr":"bad"}}'),
        ("Hit error", "IPPool.Spec.CIDR = 'bad' (IPPool CIDR must be a valid subnet)"),
    ),
    Case(
        "patch-changes-pool-cidr",
        ("patch", "ippool", "existing", "-p", '{"spec":{"cidr":"10.9.0.0/16"}}'),
        ("IPPool.Spec.CIDR = '10.9.0.0/16' (IPPool CIDR cannot be modified)",),
    ),
    Case("patch-kind", ("patch", "ippool", "existing", "-p", '{"kind":"BGPPeer"}'), ("'kind'",)),
    Case(
        "patch-missing-resource",
        ("patch", "ippool", "nope", "-p", "{}"),
        ("Hit error: resource does not exist: IPPool(nope)",),
    ),
    Case("label-without-equals", ("label", "ippool", "existing", "team"), ("invalid label team",)),
    Case(
        "label-invalid-value",
        ("label", "ippool", "existing", "team=not ok!"),
        (
            "failed to update ippool existing, label not changed",
            "Metadata.Labels (value) = 'not ok!' (a valid label must be an empty string",
        ),
    ),
    # --- datastore and configuration ------------------------------------------------------------
    Case(
        "corrupt-store",
        ("get", "ippools"),
        ("{dir}/corrupt.db",),
        files={"corrupt.db": GARBAGE},
        env={"SQLITE_PATH": "{dir}/corrupt.db"},
    ),
    Case(
        "corrupt-store-on-apply",
        ("apply", "-f", "{dir}/in.yaml"),
        ("{dir}/corrupt.db",),
        files={"corrupt.db": GARBAGE, "in.yaml": pool_yaml("a", "10.1.0.0/16")},
        env={"SQLITE_PATH": "{dir}/corrupt.db"},
    ),
    Case(
        "store-parent-is-a-file",
        ("get", "ippools"),
        ("{dir}/plain-file/store.db",),
        files={"plain-file": "x\n"},
        env={"SQLITE_PATH": "{dir}/plain-file/store.db"},
    ),
    Case(
        "config-wrong-kind",
        ("get", "ippools", "-c", "{dir}/calicoctl.cfg"),
        ("invalid config file: expected kind 'CalicoAPIConfig', got 'IPPool'",),
        files={"calicoctl.cfg": f"{V3}kind: IPPool\nspec: {{}}\n"},
    ),
    Case(
        "config-wrong-apiversion",
        ("get", "ippools", "-c", "{dir}/calicoctl.cfg"),
        ("invalid config file: unknown APIVersion 'projectcalico.org/v1'",),
        files={"calicoctl.cfg": "apiVersion: projectcalico.org/v1\nkind: CalicoAPIConfig\n"},
    ),
    Case(
        "config-unknown-field",
        ("get", "ippools", "-c", "{dir}/calicoctl.cfg"),
        ("invalid config file", "spec.datastore"),
        files={"calicoctl.cfg": f"{V3}kind: CalicoAPIConfig\nspec: {{datastore: sqlite}}\n"},
    ),
    Case(
        "config-bad-yaml",
        ("get", "ippools", "-c", "{dir}/calicoctl.cfg"),
        ("invalid config file", "{dir}/calicoctl.cfg", "cannot parse YAML"),
        files={"calicoctl.cfg": f"{V3}kind: CalicoAPIConfig\nspec: {{datastoreType: [}}\n"},
    ),
    Case(
        "config-binary",
        ("get", "ippools", "-c", "{dir}/calicoctl.cfg"),
        ("invalid config file: {dir}/calicoctl.cfg is not UTF-8 text",),
        files={"calicoctl.cfg": GARBAGE},
    ),
    Case(
        "config-missing",
        ("get", "ippools", "-c", "{dir}/missing.cfg"),
        ("Error reading config file: {dir}/missing.cfg",),
    ),
    Case(
        "datastore-kubernetes",
        ("get", "ippools"),
        ("unsupported datastoreType 'kubernetes'",),
        env={"DATASTORE_TYPE": "kubernetes"},
    ),
    Case(
        "datastore-kubernetes-prefixed-env",
        ("apply", "-f", "{dir}/in.yaml"),
        ("unsupported datastoreType 'kubernetes'",),
        files={"in.yaml": pool_yaml("a", "10.1.0.0/16")},
        env={"DATASTORE_TYPE": "", "CALICO_DATASTORE_TYPE": "kubernetes"},
    ),
    Case(
        "datastore-etcd-unavailable",
        ("get", "ippools"),
        ("cannot reach etcd at http://127.0.0.1:1: connection refused",),
        env={"DATASTORE_TYPE": "etcdv3", "ETCD_ENDPOINTS": "http://127.0.0.1:1"},
    ),
]


def _format(text: str, directory: Path) -> str:
    return text.replace("{dir}", str(directory))


@pytest.fixture(autouse=True)
def existing_pool(ctl: InProcess) -> None:
    ctl.ok("apply", "-f", "-", stdin=EXISTING)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_and_writes_nothing(ctl: InProcess, case: Case) -> None:
    directory = ctl.dir
    written: dict[Path, bytes] = {}
    for name, content in case.files.items():
        path = directory / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        written[path] = path.read_bytes()
    before = snapshot(ctl)

    args = [_format(a, directory) for a in case.args]
    with pytest.MonkeyPatch.context() as mp:
        for name, value in case.env.items():
            mp.setenv(name, _format(value, directory))
        result = ctl.run(*args, stdin=case.stdin)

    line = one_error_line(result)
    for expected in case.expect:
        assert _format(expected, directory) in line, (expected, line)
    assert result.out == ""
    assert snapshot(ctl) == before
    for path, content in written.items():
        assert path.read_bytes() == content, f"{path} was modified"
    # No stray store next to a bad SQLITE_PATH either.
    assert not os.path.exists(directory / "plain-file" / "store.db")


def test_bad_label_does_not_also_report_a_missing_name(ctl: InProcess) -> None:
    doc = pool_doc("{cidr: 10.1.0.0/16}", '{name: p, labels: {"bad key!": v}}')
    line = one_error_line(ctl.run("apply", "-f", "-", stdin=doc))
    assert "name is required" not in line


@pytest.mark.parametrize(
    "text", ["? [1]\n: 2\n", "a:\n  ? {b: 1}\n  : 2\n"], ids=["list-key", "map-key"]
)
def test_unhashable_yaml_key_is_a_parse_error(ctl: InProcess, text: str) -> None:
    line = one_error_line(ctl.run("apply", "-f", "-", stdin=text))
    assert line.startswith("stdin: cannot parse YAML")


def test_a_document_in_a_file_is_reported_as_calico_reports_it(ctl: InProcess) -> None:
    """Calico's exact line for the issue's examples, from a file, with nothing written: the
    Go field path and libcalico-go's wording, and no pycalico 'FILE document N' prefix."""
    path = ctl.dir / "pool.yaml"
    path.write_text(pool_doc("{cidr: 10.204.1.0/16}", "{name: x}"))
    before = snapshot(ctl)
    line = one_error_line(ctl.run("create", "-f", str(path)))
    # libcalico-go masks the CIDR before it checks the mask, so it prints the masked form.
    assert line == (
        "Failed to create 'IPPool' resource: [error with field IPPool.Spec.CIDR = "
        "'10.204.0.0/16' (IPPool CIDR is not strictly masked)]"
    )
    path.write_text(pool_doc("{cidr: 10.204.0.0/16, ipipMode: Always, vxlanMode: Always}"))
    line = one_error_line(ctl.run("create", "-f", str(path)))
    assert line == (
        "Failed to create 'IPPool' resource: [error with field IPPool.Spec.VXLANMode = "
        "'Always' (Cannot enable both VXLAN and IPIP on the same IPPool)]"
    )
    assert snapshot(ctl) == before


def test_several_invalid_fields_take_libcalico_gos_list_shape(ctl: InProcess) -> None:
    doc = pool_doc("{cidr: 10.1.0.0/16, natOutgoing: 1}", "{name: Bad}")
    result = ctl.run("apply", "-f", "-", stdin=doc)
    assert (result.rc, result.out) == (1, "")
    assert result.err == (
        "Failed to apply 'IPPool' resource: [error with the following fields:\n"
        "-  Metadata.Name = 'Bad' (name must consist of lower case alphanumeric characters, "
        "'-' or '.' (regex: [a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*))\n"
        "-  NATOutgoing = '1' (must be true or false, not a number)\n"
        "]\n"
    )


def test_invalid_documents_among_several_are_each_reported_and_located(ctl: InProcess) -> None:
    """Every refused document in Calico's bracketed list (as its ExecuteConfigCommand lists
    each failure), none of the batch written, and a line per refused document saying where
    it is, since Calico's field names (`CIDR`) do not."""
    path = ctl.dir / "pools.yaml"
    path.write_text(
        multi(
            pool_yaml("a", "10.1.0.0/16"),
            pool_doc("{cidr: 10.2.0.1/16}", "{name: b}"),
            pool_doc("{}", "{name: c}"),
        )
    )
    before = snapshot(ctl)
    result = ctl.run("apply", "-f", str(path))
    assert (result.rc, result.out) == (1, "")
    assert result.err.splitlines() == [
        "Failed to apply any 'IPPool' resources: [error with field IPPool.Spec.CIDR = "
        "'10.2.0.0/16' (IPPool CIDR is not strictly masked) "
        "error with field CIDR = '' (required field is missing)]",
        f"  in {path} document 2 (IPPool b): spec.cidr",
        f"  in {path} document 3 (IPPool c): spec.cidr",
    ]
    assert snapshot(ctl) == before


# --- every kind's refusals, worded as Calico v3.30 prints them -------------------------------


def tag(field: str, value: str, go_tag: str) -> str:
    """libcalico-go's ErroredField for a field that failed a `validate:` struct tag (its
    extractReason, trailing space and all)."""
    return (
        f"{field} = '{value}' (Reason: failed to validate Field: {field} because of Tag: {go_tag} )"
    )


def refused(kind: str, *fields: str) -> str:
    """calicoctl's stderr for one resource its client refused: ErrorValidation's one-field or
    list shape, inside the brackets Go prints an []error with."""
    if len(fields) == 1:
        inner = f"error with field {fields[0]}"
    else:
        inner = "error with the following fields:\n" + "".join(f"-  {f}\n" for f in fields)
    return f"Failed to apply '{kind}' resource: [{inner}]\n"


def sentence(kind: str, text: str) -> str:
    return f"Failed to apply '{kind}' resource: [{text}]\n"


PORT_RANGE = "port range invalid, port number must be between 1 and 65535"
TEMPLATES = "KubeControllersConfiguration.Node.HostEndpoint.Templates"

# Kind -> (name, metadata extras, spec, what calicoctl prints), from libcalico-go's
# validator.go, its clientv3 and the API types' `validate:` tags at v3.30.
REFUSALS: dict[str, list[tuple[str, dict[str, Any], dict[str, Any], str]]] = {
    "FelixConfiguration": [
        (
            "default",
            {},
            {"logSeverityScreen": "Loud"},
            refused("FelixConfiguration", tag("LogSeverityScreen", "Loud", "logLevel")),
        ),
        (
            "default",
            {},
            {"kubeNodePortRanges": [f"{p}:{p + 1}" for p in range(30000, 30016, 2)]},
            refused(
                "FelixConfiguration",
                "KubeNodePortRanges = '[30000:30001 30002:30003 30004:30005 30006:30007 "
                "30008:30009 30010:30011 30012:30013 30014:30015]' "
                "(node port ranges list is too long (max 7))",
            ),
        ),
        (
            "default",
            {},
            {"natPortRange": 0},
            refused("FelixConfiguration", f"Port = '0' ({PORT_RANGE})"),
        ),
        (
            "default",
            {},
            {"healthTimeoutOverrides": [{"name": "main/loop", "timeout": "30s"}]},
            refused(
                "FelixConfiguration",
                "HealthTimeoutOverride.Name = '{main/loop 30s}' "
                "(name should match regex ^[a-zA-Z0-9_ -]+$)",
            ),
        ),
        (
            "default",
            {},
            {"routeTableRange": {"min": 1, "max": 250}, "routeTableRanges": [{"min": 1, "max": 9}]},
            refused(
                "FelixConfiguration",
                "RouteTableRange = '&{1 250}' (cannot be set when `RouteTableRanges` is also set)",
            ),
        ),
        (
            "default",
            {},
            {"failsafeInboundHostPorts": [{"protocol": "ICMP", "port": 1}]},
            refused(
                "FelixConfiguration",
                "ProtoPort.Protocol = 'ICMP' (protocol must be 'TCP' or 'UDP' or 'SCTP'.)",
            ),
        ),
        (
            "default",
            {},
            {"wireguardListeningPort": 0, "bpfExcludeCIDRsFromNAT": ["10.0.0.0/8", "ten"]},
            refused(
                "FelixConfiguration",
                tag("BPFExcludeCIDRsFromNAT", "[10.0.0.0/8 ten]", "cidrs"),
                tag("WireguardListeningPort", "0", "gt"),
            ),
        ),
    ],
    "BGPFilter": [
        (
            "f",
            {},
            {"exportV4": [{"cidr": "fd00::/64", "matchOperator": "In", "action": "Accept"}]},
            refused("BGPFilter", tag("CIDR", "fd00::/64", "netv4")),
        ),
        (
            "f",
            {},
            {"importV4": [{"cidr": "10.0.0.0/8", "action": "Accept"}]},
            refused(
                "BGPFilter", "CIDR = '10.0.0.0/8' (MatchOperator cannot be empty when CIDR is not)"
            ),
        ),
        (
            "f",
            {},
            {"importV6": [{"action": "Drop"}, {"cidr": "fd00::/64", "matchOperator": "In"}]},
            refused(
                "BGPFilter", tag("Action", "Drop", "filterAction"), tag("Action", "", "required")
            ),
        ),
        (
            "f",
            {},
            {
                "exportV6": [
                    {
                        "cidr": "fd00::/64",
                        "matchOperator": "In",
                        "prefixLength": {"min": 129},
                        "action": "Accept",
                    }
                ]
            },
            refused("BGPFilter", tag("Min", "129", "bgpFilterPrefixLengthV6")),
        ),
    ],
    "BGPConfiguration": [
        (
            "default",
            {},
            {"communities": [{"name": "c", "value": "65001:1"}]},
            refused(
                "BGPConfiguration",
                "Spec.Communities[] = '[{c 65001:1}]' "
                "(communities are defined but not used in Spec.PrefixAdvertisement[].)",
            ),
        ),
        (
            "default",
            {},
            {
                "communities": [{"name": "big", "value": "70000:70000"}],
                "prefixAdvertisements": [{"cidr": "10.0.0.0/8", "communities": ["big"]}],
            },
            refused(
                "BGPConfiguration",
                "Spec.Communities[].Value = '70000:70000' "
                "(invalid community value, expected 16 bit value)",
                "Spec.Communities[].Value = '70000:70000' "
                "(invalid community value, expected 16 bit value)",
            ),
        ),
        (
            "default",
            {},
            {"prefixAdvertisements": [{"cidr": "ten", "communities": ["65001:1"]}]},
            refused(
                "BGPConfiguration",
                tag("CIDR", "ten", "net"),
                "Spec.PrefixAdvertisement[].CIDR = 'ten' (invalid CIDR value.)",
            ),
        ),
        (
            "default",
            {},
            {"logSeverityScreen": "Loud", "ignoredInterfaces": ["*"]},
            refused(
                "BGPConfiguration",
                tag("LogSeverityScreen", "Loud", "logLevel"),
                tag("IgnoredInterfaces[0]", "*", "ignoredInterface"),
            ),
        ),
        (
            "node.n1",
            {},
            {
                "asNumber": 65000,
                "listenPort": 1790,
                "serviceClusterIPs": [{"cidr": "10.96.0.0/12"}],
            },
            refused(
                "BGPConfiguration",
                "BGPConfiguration.Spec.ASNumber "
                "(Cannot set ASNumber on a non default BGP Configuration.)",
                "BGPConfiguration.Spec.ServiceClusterIPs "
                "(Cannot set ServiceClusterIPs on a non default BGP Configuration.)",
            ),
        ),
    ],
    "Node": [
        (
            "n1",
            {},
            {"bgp": {}},
            refused("Node", "BGP = '&{<nil>    }' (Spec.BGP should not be empty)"),
        ),
        (
            "n1",
            {},
            {"ipv4VXLANTunnelAddr": "fd00::1", "vxlanTunnelMACAddr": "66:zz"},
            refused(
                "Node",
                tag("IPv4VXLANTunnelAddr", "fd00::1", "ipv4"),
                tag("VXLANTunnelMACAddr", "66:zz", "mac"),
            ),
        ),
        (
            "n1",
            {},
            {"addresses": [{"address": "192.0.2.1", "type": "PublicIP"}]},
            refused("Node", tag("Type", "PublicIP", "ipType")),
        ),
    ],
    "WorkloadEndpoint": [
        (
            "w",
            {},
            {"ipNetworks": ["10.0.0.0/24"]},
            refused(
                "WorkloadEndpoint",
                "IPNetworks = '[10.0.0.0/24]' (IP network contains multiple addresses)",
            ),
        ),
        (
            "w",
            {},
            {
                "ipNetworks": ["10.0.0.5/32"],
                "ipNATs": [{"internalIP": "10.0.0.6", "externalIP": "192.0.2.1"}],
            },
            refused(
                "WorkloadEndpoint",
                "IPNATs = '[{10.0.0.6 192.0.2.1}]' (NAT is not in the endpoint networks)",
            ),
        ),
        (
            "w",
            {},
            {"ports": [{"name": "ping", "protocol": "ICMP", "port": 1}]},
            refused(
                "WorkloadEndpoint",
                "WorkloadEndpointPort.Protocol = 'ICMP' "
                "(WorkloadEndpointPort protocol does not support ports.)",
            ),
        ),
        (
            "w",
            {},
            {"ipv4Gateway": "fd00::1"},
            refused(
                "WorkloadEndpoint",
                tag("IPv4Gateway", "fd00::1", "ipv4"),
                "IPv4Gateway = 'fd00::1' (invalid IPv4 gateway address specified)",
            ),
        ),
    ],
    "HostEndpoint": [
        (
            "h",
            {},
            {},
            refused(
                "HostEndpoint",
                "InterfaceName = '' (no interface or expected IPs have been specified)",
                "InterfaceName = '' (no node has been specified)",
            ),
        ),
        (
            "h",
            {},
            {"node": "n1", "expectedIPs": ["10.0.0.300"]},
            refused("HostEndpoint", tag("ExpectedIPs[0]", "10.0.0.300", "ip")),
        ),
        (
            "h",
            {},
            {"node": "n1", "interfaceName": "eth0", "ports": [{"protocol": "TCP", "port": 80}]},
            refused("HostEndpoint", tag("Name", "", "portName")),
        ),
    ],
    "KubeControllersConfiguration": [
        (
            "other",
            {},
            {},
            sentence(
                "KubeControllersConfiguration",
                "Cannot create a Kube Controllers Configuration resource with a name other than "
                '"default"',
            ),
        ),
        (
            "default",
            {},
            {"healthChecks": "on"},
            refused("KubeControllersConfiguration", tag("HealthChecks", "on", "oneof")),
        ),
        (
            "default",
            {},
            {"controllers": {"node": {"hostEndpoint": {"templates": [{"generateName": "a"}]}}}},
            refused("KubeControllersConfiguration", f"{TEMPLATES}.a (CIDR can not be empty)"),
        ),
    ],
    "NetworkSet": [
        (
            "s",
            {},
            {"nets": ["10.0.0.300"]},
            refused("NetworkSet", tag("Nets[0]", "10.0.0.300", "cidr")),
        ),
        (
            "s",
            {"labels": {"projectcalico.org/namespace": "prod"}},
            {},
            refused(
                "NetworkSet",
                "Metadata.Labels (label) = 'projectcalico.org/namespace' "
                "(projectcalico.org/namespace is not a valid label name)",
            ),
        ),
    ],
    "GlobalNetworkSet": [
        (
            "s",
            {},
            {"nets": ["192.0.2.0/24", "x"]},
            refused("GlobalNetworkSet", tag("Nets[1]", "x", "cidr")),
        ),
        (
            "s",
            {"labels": {"projectcalico.org/namespace": "prod"}},
            {},
            refused(
                "GlobalNetworkSet",
                "Metadata.Labels (label) = 'projectcalico.org/namespace' "
                "(projectcalico.org/namespace is not a valid label name)",
            ),
        ),
    ],
    "Tier": [
        (
            "Gold",
            {},
            {},
            refused(
                "Tier",
                "Metadata.Name = 'Gold' (name must consist of lower case alphanumeric "
                "characters, '-' or '.' (regex: [a-z0-9]([-a-z0-9]*[a-z0-9])?"
                "(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*))",
                "Metadata.Name = 'Gold' (name must consist of lower case alphanumeric "
                "characters or '-' (regex: [a-z0-9]([-a-z0-9]*[a-z0-9])?))",
            ),
        ),
        (
            "gold",
            {},
            {"defaultAction": "Allow"},
            refused("Tier", tag("DefaultAction", "Allow", "oneof")),
        ),
        (
            "default",
            {},
            {},
            refused("Tier", "TierSpec.Order = '<nil>' (default tier order must be 1e+06)"),
        ),
    ],
    "Profile": [
        (
            "p",
            {},
            {"labelsToApply": {"bad key!": "x"}},
            refused("Profile", tag("LabelsToApply", "map[bad key!:x]", "labels")),
        ),
        (
            "p",
            {},
            {"labelsToApply": {"team": "a b", "app": "web"}},
            refused("Profile", tag("LabelsToApply", "map[app:web team:a b]", "labels")),
        ),
    ],
    "IPReservation": [
        (
            "r",
            {},
            {"reservedCIDRs": ["10.0.0.0/8", "ten"]},
            refused("IPReservation", tag("ReservedCIDRs", "[10.0.0.0/8 ten]", "cidrs")),
        ),
        (
            "r",
            {},
            {"reservedCIDRs": ["fd00::/200"]},
            refused("IPReservation", tag("ReservedCIDRs", "[fd00::/200]", "cidrs")),
        ),
    ],
    "ClusterInformation": [
        (
            "other",
            {},
            {},
            sentence(
                "ClusterInformation",
                'Cannot create a Cluster Information resource with a name other than "default"',
            ),
        ),
        (
            "Default",
            {},
            {},
            refused(
                "ClusterInformation",
                "Metadata.Name = 'Default' (name must consist of lower case alphanumeric "
                "characters, '-' or '.' (regex: [a-z0-9]([-a-z0-9]*[a-z0-9])?"
                "(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*))",
            ),
        ),
    ],
}


@pytest.mark.parametrize("kind", list(REFUSALS))
def test_each_kinds_refusals_read_as_calico_prints_them(ctl: InProcess, kind: str) -> None:
    """The Go field name, value and reason of every refusal, in ErrorValidation's shapes
    (or the client's own sentence), through calicoctl's line; nothing written."""
    for name, meta, spec, expected in REFUSALS[kind]:
        document = resource_yaml(kind, name, spec, labels=meta.get("labels"))
        before = snapshot(ctl)
        result = ctl.run("apply", "-f", "-", stdin=document)
        assert (result.rc, result.out, result.err) == (1, "", expected), spec
        assert snapshot(ctl) == before
