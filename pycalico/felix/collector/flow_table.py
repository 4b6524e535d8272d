"""Felix's flow table: NFLOG's rule traces joined with conntrack's counters per connection,
and the flow records of each flush interval (pure).

A connection is keyed by its 5-tuple as the policy chains see it: protocol, source,
destination and ports after DNAT (ICMP without ports: conntrack's reply carries another
type). NFLOG says which rules its first packet met, per direction (group 1 the destination
endpoint's ingress policy, group 2 the source's egress); conntrack says its packets and
bytes both ways and whether it is still open. A connection exists here only once one of its
packets was logged: the flows are observed, never computed.

A connection conntrack never tracked was dropped by policy (a dropped first packet leaves no
entry): its packets are the times its deciding rule logged, its bytes unknown (0). It ends
when nothing logged for it for `UNTRACKED_IDLE` seconds, as Calico ages such entries out.

At each flush every connection seen in the interval gives one record per local workload end
(reporter Src with the egress trace when the source is local, Dst with the ingress trace
when the destination is), carrying the packets and bytes since the last flush, and the
records of one FlowKey are merged (Goldmane's record: flows/record.py).

A 5-tuple used again is a new connection once a dump shows its new conntrack id; used
again before any dump saw the first (within 5 s), the two count as one: NFLOG alone cannot
tell a second connection's first packet from a retransmitted one.

The table can be saved and restored (`state`/`restore`): what was reported of a connection
that outlives a calico-node restart is not reported again.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pycalico.felix.collector import traces
from pycalico.felix.collector.conntrack_messages import ConntrackEntry
from pycalico.felix.collector.flow_view import FlowView
from pycalico.felix.collector.nflog_messages import NflogPacket
from pycalico.felix.rules.nflog import EGRESS_GROUP, INGRESS_GROUP
from pycalico.flows.nflog_prefix import Prefix, PrefixTable
from pycalico.flows.record import Action, Flow, FlowKey, PolicyHit, PolicyTrace, Reporter
from pycalico.policy.model import Endpoint
from pycalico.policy.verdict import Packet

Key = tuple[int, bytes, bytes, int, int]  # protocol, source, destination, ports
UNTRACKED_IDLE = 10.0
TCP = 6
TCP_TIME_WAIT = 7
TCP_CLOSE = 8
_ICMP = frozenset({1, 58})
PROTOCOL_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmp6", 132: "sctp"}
DIRECTIONS = (("egress", EGRESS_GROUP, Reporter.SRC), ("ingress", INGRESS_GROUP, Reporter.DST))

# Evaluates the pending trace (staged policies as enforced) of a connection at a local
# endpoint in one direction: pycalico.policy.pending.PendingEvaluator.
PendingEvaluator = Callable[[Endpoint, str, Packet], tuple[PolicyHit, ...]]


def nflog_key(packet: NflogPacket) -> Key:
    if packet.proto in _ICMP:
        return (packet.proto, packet.src, packet.dst, 0, 0)
    return (packet.proto, packet.src, packet.dst, packet.sport, packet.dport)


def packet_of(key: Key) -> Packet:
    """The packet policy is evaluated on: the connection's first, as its key holds it."""
    proto, src, dst, sport, dport = key
    ports = proto not in _ICMP
    return Packet(
        ipaddress.ip_address(src),
        ipaddress.ip_address(dst),
        proto,
        dst_port=dport if ports else None,
        src_port=sport if ports else None,
    )


def conntrack_key(entry: ConntrackEntry) -> Key:
    """The tuple as policy saw it: the original source, the destination after DNAT (the
    reply's source)."""
    orig, reply = entry.orig, entry.reply
    if orig.proto in _ICMP:
        return (orig.proto, orig.src, reply.src, 0, 0)
    return (orig.proto, orig.src, reply.src, orig.sport, reply.sport)


@dataclass
class Connection:
    key: Key
    # The prefixes logged for it, in order, per NFLOG group (1 ingress, 2 egress).
    logged: dict[int, list[str]] = field(default_factory=dict)
    # Times a deciding (allow or deny) rule logged, per group: an untracked one's packets.
    decided: dict[int, int] = field(default_factory=dict)
    decided_reported: dict[int, int] = field(default_factory=dict)
    last_logged: float = 0.0
    conntrack_id: int = 0  # 0: conntrack has not (yet) tracked it
    counters: tuple[int, int, int, int] = (0, 0, 0, 0)  # packets, bytes: orig, reply
    reported: tuple[int, int, int, int] = (0, 0, 0, 0)
    started_reported: bool = False
    ended: bool = False
    completed: bool = False
    pending: dict[str, tuple[PolicyHit, ...]] = field(default_factory=dict)
    pending_at: float = -1.0  # when the pending traces were last evaluated


def _orig_counts(entry: ConntrackEntry) -> tuple[int, int, int, int]:
    return (entry.packets_orig, entry.bytes_orig, entry.packets_reply, entry.bytes_reply)


class FlowTable:
    def __init__(self, prefixes: PrefixTable) -> None:
        """`prefixes`: the table of the prefixes Felix rendered (hashed ones read back)."""
        self.prefixes = prefixes
        self._live: dict[Key, Connection] = {}
        self._ended: list[Connection] = []
        self._parsed: dict[str, Prefix | None] = {}
        self.unreadable = 0  # prefixes that named no rendered rule

    def __len__(self) -> int:
        return len(self._live)

    def is_empty(self) -> bool:
        """No live connection, and no ended one whose records are still to be flushed."""
        return not self._live and not self._ended

    def connections(self) -> Iterator[Connection]:
        yield from self._live.values()

    # --- what the kernel says ---

    def logged(self, packets: Iterable[NflogPacket], now: float) -> list[Connection]:
        """Take one read of NFLOG packet logs; returns the connections it made."""
        made = []
        live = self._live
        for packet in packets:
            if packet.group not in (INGRESS_GROUP, EGRESS_GROUP) or not packet.family:
                continue
            key = nflog_key(packet)
            conn = live.get(key)
            if conn is None:
                conn = live[key] = Connection(key)
                made.append(conn)
            prefixes = conn.logged.setdefault(packet.group, [])
            if packet.prefix not in prefixes:
                prefixes.append(packet.prefix)
            # Pass hits do not decide; the prefix's first letter is its action.
            if packet.prefix[:1] in ("A", "D"):
                conn.decided[packet.group] = conn.decided.get(packet.group, 0) + 1
            conn.last_logged = now
        return made

    def dumped(self, entries: Iterable[ConntrackEntry]) -> None:
        """Take a whole conntrack dump: counters for the connections known, and the end of
        those conntrack no longer holds (or holds closed)."""
        live = self._live
        seen = set()
        for entry in entries:
            key = conntrack_key(entry)
            conn = live.get(key)
            if conn is None:
                continue
            if conn.conntrack_id and entry.id != conn.conntrack_id:
                # The 5-tuple was used again: the old connection ended, the new one
                # logged the same rules (its first packet's log was taken as the old's).
                self._end(conn, conn.key[0] == TCP)
                fresh = live[key] = Connection(key, dict(conn.logged), dict(conn.decided))
                fresh.last_logged = conn.last_logged
                conn = fresh
            conn.conntrack_id = entry.id
            conn.counters = _orig_counts(entry)
            seen.add(key)
            if entry.orig.proto == TCP and entry.tcp_state in (TCP_TIME_WAIT, TCP_CLOSE):
                self._end(conn, True)
        for key, conn in list(live.items()):
            if conn.conntrack_id and key not in seen:
                self._end(conn, key[0] == TCP)

    def _end(self, conn: Connection, completed: bool) -> None:
        if self._live.get(conn.key) is conn:
            del self._live[conn.key]
        conn.ended, conn.completed = True, completed
        self._ended.append(conn)

    # --- pending traces ---

    def evaluate_pending(
        self, view: FlowView, evaluate: PendingEvaluator, now: float, every: float
    ) -> int:
        """The pending traces of connections new, or last evaluated `every` seconds ago or
        more (Calico: on appearance, then every 0.8 × flush interval). Returns how many
        connections were evaluated."""
        count = 0
        # A short connection can end in the conntrack dump that comes before its first
        # evaluation; its record still goes out, so it is evaluated once all the same.
        unevaluated_ends = [c for c in self._ended if c.pending_at < 0]
        for conn in [*self._live.values(), *unevaluated_ends]:
            if conn.pending_at >= 0 and now - conn.pending_at < every:
                continue
            packet = packet_of(conn.key)
            for direction, group, _ in DIRECTIONS:
                if group not in conn.logged:
                    continue
                ep = _local(view, conn.key, direction)
                if ep is not None:
                    conn.pending[direction] = evaluate(ep, direction, packet)
            conn.pending_at = now
            count += 1
        return count

    # --- flow records ---

    def _read(self, prefix: str) -> Prefix | None:
        if prefix not in self._parsed:
            try:
                self._parsed[prefix] = self.prefixes.read(prefix)
            except ValueError:
                self.unreadable += 1
                self._parsed[prefix] = None
            if len(self._parsed) > 100_000:
                self._parsed.clear()
        return self._parsed.get(prefix)

    def flush(self, view: FlowView, start: int, now: float) -> list[Flow]:
        """The records of the interval from `start` to `now`, one per FlowKey; the
        connections that ended are forgotten, and the untracked ones idle too long end."""
        for conn in list(self._live.values()):
            if not conn.conntrack_id and now - conn.last_logged >= UNTRACKED_IDLE:
                self._end(conn, False)
        merged: dict[FlowKey, Flow] = {}
        for conn in [*self._live.values(), *self._ended]:
            for flow in self._records(conn, view, start, int(now)):
                found = merged.get(flow.key)
                merged[flow.key] = flow if found is None else found.merged(flow)
            if conn.conntrack_id:
                conn.reported = conn.counters
            else:
                conn.decided_reported = dict(conn.decided)
            conn.started_reported = True
        self._ended = []
        return list(merged.values())

    def _records(self, conn: Connection, view: FlowView, start: int, end: int) -> Iterator[Flow]:
        proto, src, dst, _, dport = conn.key
        p_orig = b_orig = p_reply = b_reply = 0
        if conn.conntrack_id:
            p_orig, b_orig, p_reply, b_reply = (
                max(now - then, 0) for now, then in zip(conn.counters, conn.reported, strict=True)
            )
        elif conn.started_reported and not conn.ended and conn.decided == conn.decided_reported:
            return  # a dropped connection with nothing new: it is merely waiting to age out
        source, dest = view.name(src), view.name(dst)
        for direction, group, reporter in DIRECTIONS:
            logged = conn.logged.get(group)
            if not logged:
                continue
            ep = _local(view, conn.key, direction)
            if ep is None:
                continue
            prefixes = [p for p in (self._read(text) for text in logged) if p is not None]
            enforced = traces.hits(prefixes, view, ep, direction)
            action = traces.action(enforced)
            if action == Action.UNSPECIFIED:
                continue
            if not conn.conntrack_id:
                p_orig = conn.decided.get(group, 0) - conn.decided_reported.get(group, 0)
            outward = reporter == Reporter.SRC
            key = FlowKey(
                source_name=source.endpoint.name,
                source_namespace=source.endpoint.namespace,
                source_type=source.endpoint.type,
                dest_name=dest.endpoint.name,
                dest_namespace=dest.endpoint.namespace,
                dest_type=dest.endpoint.type,
                dest_port=dport,
                proto=PROTOCOL_NAMES.get(proto, str(proto)),
                reporter=reporter,
                action=action,
                policies=PolicyTrace(enforced, conn.pending.get(direction, ())),
            )
            yield Flow(
                key=key,
                start_time=start,
                end_time=max(end, start),
                source_labels=source.labels,
                dest_labels=dest.labels,
                packets_in=p_reply if outward else p_orig,
                packets_out=p_orig if outward else p_reply,
                bytes_in=b_reply if outward else b_orig,
                bytes_out=b_orig if outward else b_reply,
                num_connections_started=0 if conn.started_reported else 1,
                num_connections_completed=1 if conn.completed else 0,
                num_connections_live=0 if conn.ended else 1,
            )

    # --- surviving a restart ---

    def state(self) -> dict[str, Any]:
        """The live connections, as JSON-able data."""
        return {
            "connections": [
                {
                    "key": [conn.key[0], conn.key[1].hex(), conn.key[2].hex(), *conn.key[3:]],
                    "logged": {str(g): p for g, p in conn.logged.items()},
                    "decided": {str(g): n for g, n in conn.decided.items()},
                    "decided_reported": {str(g): n for g, n in conn.decided_reported.items()},
                    "conntrack_id": conn.conntrack_id,
                    "reported": list(conn.reported),
                    "started_reported": conn.started_reported,
                }
                for conn in self._live.values()
            ]
        }

    def restore(self, data: Any, now: float) -> int:
        """Take back what `state` saved; returns how many connections. Unreadable data is
        ignored (ValueError for the caller to log)."""
        try:
            restored = []
            for item in data["connections"]:
                proto, src, dst, sport, dport = item["key"]
                conn = Connection(
                    (int(proto), bytes.fromhex(src), bytes.fromhex(dst), int(sport), int(dport)),
                    {int(g): [str(p) for p in ps] for g, ps in item["logged"].items()},
                    {int(g): int(n) for g, n in item["decided"].items()},
                    {int(g): int(n) for g, n in item["decided_reported"].items()},
                    last_logged=now,
                    conntrack_id=int(item["conntrack_id"]),
                    reported=tuple(int(n) for n in item["reported"]),  # type: ignore[arg-type]
                    started_reported=bool(item["started_reported"]),
                )
                conn.counters = conn.reported
                restored.append(conn)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"the saved flow table cannot be read: {exc!r}") from None
        for conn in restored:
            self._live.setdefault(conn.key, conn)
        return len(restored)


def _local(view: FlowView, key: Key, direction: str) -> Endpoint | None:
    """The local workload endpoint whose `direction` policy the connection meets."""
    return view.local.get(key[1] if direction == "egress" else key[2])
