"""`calico-lab status` as tables (pure): the lab in one line, its nodes, pods and pools, then
what needs attention."""

from __future__ import annotations

from collections.abc import Sequence

from pycalico.lab.lab_status import LabFacts


def columns(rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart, as kubectl and calicoctl print them."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        + "\n"
        for row in rows
    )


def _headline(facts: LabFacts) -> str:
    encap = {"vxlan": "VXLAN", "ipip": "IPIP", "none": "no encapsulation (BGP)"}[facts.encap]
    if facts.encap != "none" and facts.cross_subnet:
        encap += " between subnets only"
    extras = ", dual stack" if facts.ipv6 else ""
    if facts.route_reflectors:
        extras += f", route reflectors {', '.join(facts.route_reflectors)}"
    return (
        f"lab {facts.name}: {facts.topology} underlay, {encap}{extras}, "
        f"{facts.datastore} datastore, external host {facts.external}\n"
    )


def render(facts: LabFacts) -> str:
    out = [_headline(facts), "\n"]
    rows = [["NODE", "IP", "AS", "TUNNEL", "CALICO-NODE", "READY", "BGP", "UNDERLAY"]]
    for n in facts.nodes:
        bgp = "-" if n.bgp is None else f"{n.bgp[0]}/{n.bgp[1]} Established"
        rows.append(
            [
                n.name,
                n.ip,
                str(n.as_number) if n.as_number is not None else "?",
                n.tunnel or "-",
                "running" if n.running else "exited",
                "no" if n.not_ready else "yes",
                bgp,
                "route missing" if n.missing_routes else "ok",
            ]
        )
    out.append(columns(rows))
    out.append("\n")
    if facts.pods:
        with_v6 = any(p.ip6 for p in facts.pods)
        pod_rows = [["POD", "NODE", "IP", *(["IPV6"] if with_v6 else [])]]
        for p in facts.pods:
            pod_rows.append([p.key, p.node, p.ip or "-", *([p.ip6 or "-"] if with_v6 else [])])
        out.append(columns(pod_rows))
    else:
        out.append("no pods (add one: calico-lab run NAME, or calico-lab pod add NAME --node N)\n")
    out.append("\n")
    if facts.pools:
        pool_rows = [["POOL", "CIDR", "ENCAPSULATION", "NAT-OUTGOING", "DISABLED"]]
        for pool in facts.pools:
            pool_rows.append(
                [
                    pool.name,
                    pool.cidr,
                    pool.encapsulation,
                    "yes" if pool.nat_outgoing else "no",
                    "yes" if pool.disabled else "no",
                ]
            )
        out.append(columns(pool_rows))
    notes = []
    if facts.datastore_error:
        notes.append(f"datastore unreachable: {facts.datastore_error}")
    for n in facts.nodes:
        if n.not_ready:
            notes.append(f"{n.name} is not ready: {n.not_ready}")
        for route in n.missing_routes:
            notes.append(
                f"{n.name} has lost the lab's route `{route}` (an eth0 flap?): "
                "calico-lab repair puts it back"
            )
    for role, route in facts.other_missing_routes:
        notes.append(f"{role} has lost the lab's route `{route}`: calico-lab repair puts it back")
    if notes:
        out.append("\n" + "".join(f"! {note}\n" for note in notes))
    return "".join(out)
