"""`calicoctl flows`: the flow log, from the aggregator's whisker-backend API, one line per
flow naming the policy and rule that decided it (Hubble's `observe`, for Calico's records).

The name follows calicoctl's nouns (`calicoctl ipam`, `calicoctl node`): what is shown is
flows; the aggregator is found by `--server` or CALICO_FLOWS_SERVER.
"""

from __future__ import annotations

import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from typing import Any

from pycalico.ctl import flow_lines
from pycalico.ctl.arguments import ArgParser
from pycalico.ctl.errors import CtlError, UsageError

SERVER_ENV = "CALICO_FLOWS_SERVER"
DEFAULT_SERVER = "http://127.0.0.1:8080"
DEFAULT_LAST = 20
PAGE_SIZE = 1000
_DURATION = re.compile(r"(\d+)([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_ACTIONS = {"allow": "Allow", "deny": "Deny", "pass": "Pass"}

USAGE = f"""Usage:
  calicoctl flows [--server=<url>] [--follow] [--since=<duration>] [--last=<n>]
                  [--from=<NS/POD>] [--to=<NS/POD>] [--action=<action>]
                  [--policy=<[NS/]NAME>] [--port=<port>] [-o <wide|json>]

Options:
  -h --help               Show this screen.
     --server=<url>       The flow aggregator's API (calico-goldmane, or any
                          whisker-backend). [default: ${SERVER_ENV}, else {DEFAULT_SERVER}]
  -f --follow             Keep printing flows as they are reported.
     --since=<duration>   Only flows that started this long ago or later (30s, 5m, 1h).
     --last=<n>           Without --follow: the newest n flows, 0 for all. [default: {DEFAULT_LAST}]
     --from=<NS/POD>      Flows from this pod (NS/ for a whole namespace; Global/NAME for
                          what has no namespace, such as a host).
     --to=<NS/POD>        Flows to this pod (likewise).
     --action=<action>    allow, deny or pass (may be repeated).
     --policy=<[NS/]NAME> Flows a policy acted on (a rule of it, or the end of its tier
                          after it selected them), enforced or staged (may be repeated).
     --port=<port>        Flows to this destination port (may be repeated).
  -o --output=<format>    wide (counters and labels) or json (the API's items, one per line).

Description:
  One line per flow, oldest first: the time, source -> destination:port, the protocol,
  INGRESS (reported by the destination) or EGRESS (by the source), the verdict and the
  policy and rule that decided it; staged policies' verdict follows in [pending: ...].
"""


class _Endpoint:
    """A --from/--to pod: its namespace (exact) and name; a flow of pods of one workload
    is named `<generateName>*`, which a pod name of that workload also matches."""

    def __init__(self, text: str, option: str) -> None:
        namespace, slash, name = text.partition("/")
        if not slash or not namespace or "/" in name:
            raise UsageError(f"{option} wants NS/POD (NS/ for a whole namespace), not '{text}'")
        self.namespace = namespace
        self.name = name

    def matches(self, name: str) -> bool:
        if not self.name or name == self.name:
            return True
        return name.endswith("*") and self.name.startswith(name[:-1])


def _parser() -> ArgParser:
    parser = ArgParser(prog="calicoctl flows", add_help=False)
    parser.add_argument("-h", "--help", action="store_true")
    parser.add_argument("--server")
    parser.add_argument("-f", "--follow", action="store_true")
    parser.add_argument("--since")
    parser.add_argument("--last")
    parser.add_argument("--from", dest="source")
    parser.add_argument("--to", dest="dest")
    parser.add_argument("--action", action="append", default=[])
    parser.add_argument("--policy", action="append", default=[])
    parser.add_argument("--port", action="append", default=[])
    parser.add_argument("-o", "--output", default="")
    parser.add_argument("--allow-version-mismatch", action="store_true")
    return parser


def _seconds(text: str) -> int:
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise UsageError(f"--since wants a duration such as 30s, 5m or 1h, not '{text}'")
    return int(match.group(1)) * _UNITS[match.group(2)]


def _count(text: str, option: str) -> int:
    if not text.isdigit():
        raise UsageError(f"{option} wants a whole number, not '{text}'")
    return int(text)


def _filters(opts: Any, source: _Endpoint | None, dest: _Endpoint | None) -> dict[str, Any]:
    filters: dict[str, Any] = {}
    if source is not None:
        filters["source_namespaces"] = [{"value": source.namespace, "type": "Exact"}]
    if dest is not None:
        filters["dest_namespaces"] = [{"value": dest.namespace, "type": "Exact"}]
    actions = []
    for text in opts.action:
        action = _ACTIONS.get(text.lower())
        if action is None:
            raise UsageError(f"--action wants allow, deny or pass, not '{text}'")
        actions.append(action)
    if actions:
        filters["actions"] = actions
    ports = []
    for text in opts.port:
        port = _count(text, "--port")
        if port > 65535:
            raise UsageError(f"--port wants a port from 0 to 65535, not '{text}'")
        ports.append({"value": port, "type": "Exact"})
    if ports:
        filters["dest_ports"] = ports
    policies = []
    for text in opts.policy:
        namespace, slash, name = text.rpartition("/")
        if not name or (slash and not namespace):
            raise UsageError(f"--policy wants NAME or NS/NAME, not '{text}'")
        match: dict[str, Any] = {"name": {"value": name, "type": "Exact"}}
        if namespace:
            match["namespace"] = {"value": namespace, "type": "Exact"}
        policies.append(match)
    if policies:
        filters["policies"] = policies
    return filters


def run(args: Sequence[str]) -> int:
    opts = _parser().parse_args(list(args))
    if opts.help:
        sys.stdout.write(USAGE)
        return 0
    if opts.output not in ("", "wide", "json"):
        raise UsageError(f"unknown output format '{opts.output}' (wide or json)")
    server = (opts.server or os.environ.get(SERVER_ENV) or DEFAULT_SERVER).rstrip("/")
    if not server.startswith(("http://", "https://")):
        raise UsageError(f"--server wants an http:// or https:// URL, not '{server}'")
    source = None if opts.source is None else _Endpoint(opts.source, "--from")
    dest = None if opts.dest is None else _Endpoint(opts.dest, "--to")
    last = DEFAULT_LAST if opts.last is None else _count(opts.last, "--last")
    if opts.follow and opts.last is not None:
        raise UsageError("--last is for a one-off listing; with --follow use --since")
    params: dict[str, str] = {}
    filters = _filters(opts, source, dest)
    if filters:
        params["filters"] = json.dumps(filters, separators=(",", ":"))
    if opts.since is not None:
        params["startTimeGte"] = str(-_seconds(opts.since))
    elif opts.follow:
        params["startTimeGte"] = "-1"  # the aggregates of the bucket filling now, then new ones

    def wanted(item: dict[str, Any]) -> bool:
        return (source is None or source.matches(item.get("source_name", ""))) and (
            dest is None or dest.matches(item.get("dest_name", ""))
        )

    show = {"": flow_lines.compact, "wide": flow_lines.wide}.get(opts.output, _json_line)
    items = _watch(server, params) if opts.follow else _listing(server, params, last, wanted)
    for item in items:
        if wanted(item):
            sys.stdout.write(show(item) + "\n")
            sys.stdout.flush()
    return 0


def _json_line(item: dict[str, Any]) -> str:
    return json.dumps(item, separators=(",", ":"))


def _listing(server: str, params: dict[str, str], last: int, wanted: Any) -> list[dict[str, Any]]:
    """Every flow (newest first, page by page), then the newest `last` of those wanted,
    oldest first."""
    items: list[dict[str, Any]] = []
    page = 0
    while True:
        body = _get_json(server, {**params, "page": str(page), "pageSize": str(PAGE_SIZE)})
        items.extend(i for i in body.get("items", []) if wanted(i))
        page += 1
        if page >= int(body.get("total", {}).get("totalPages", 0)):
            break
        if last and len(items) >= last:
            break
    chosen = items[:last] if last else items
    return list(reversed(chosen))


def _url(server: str, path: str, params: dict[str, str]) -> str:
    query = urllib.parse.urlencode(params)
    return f"{server}{path}" + (f"?{query}" if query else "")


def _open(server: str, params: dict[str, str], timeout: float | None) -> Any:
    url = _url(server, "/flows", params)
    try:
        return urllib.request.urlopen(url, timeout=timeout)
    except urllib.error.HTTPError as exc:
        raise CtlError(
            f"the flow aggregator at {server} refused the query: {_reason(exc)}"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        text = getattr(reason, "strerror", None) or str(reason)
        raise CtlError(f"cannot reach the flow aggregator at {server}: {text}") from None


def _reason(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read())["error"])
    except (ValueError, KeyError, TypeError, OSError):
        return f"HTTP {exc.code} {exc.reason}"


def _get_json(server: str, params: dict[str, str]) -> dict[str, Any]:
    with _open(server, params, timeout=30) as reply:
        try:
            body = json.loads(reply.read())
        except ValueError:
            raise CtlError(f"{server} did not answer with flows (not JSON)") from None
    if not isinstance(body, dict):
        raise CtlError(f"{server} did not answer with flows")
    return body


def _watch(server: str, params: dict[str, str]) -> Iterator[dict[str, Any]]:
    with _open(server, {**params, "watch": "true"}, timeout=None) as stream:
        for raw in stream:
            line = raw.decode().rstrip("\n")
            if line.startswith("data: "):
                yield json.loads(line[len("data: ") :])
            elif line.startswith("error: "):
                raise CtlError(f"the flow stream from {server} ended: {line[len('error: ') :]}")
