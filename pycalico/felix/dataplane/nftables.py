"""Keeps pycalico's `inet calico` nftables table equal to the rendered ruleset (policy,
natOutgoing and VXLAN's NOTRACK).

The first apply (and any apply after a failure) replaces the whole table in one `nft -f`
transaction. After that only differences are sent, still as one transaction: chains whose
rules changed are flushed and refilled, set and map elements are added and deleted one by
one, so a pod's label change touches only the set elements it moves. A change that only
moves set elements (the commonest: a label change) goes straight to the kernel over netlink
instead of through `nft -f`, which would first read back every set in the table. A failed
apply leaves the previous ruleset in force (both ways are all-or-nothing transactions);
endpoints the failed change would have opened stay closed by the dispatch chains' final
drop.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from pycalico.felix.calc.desired import Desired
from pycalico.felix.dataplane import nft_netlink
from pycalico.felix.dataplane.manager import Manager
from pycalico.felix.rules import element_keys
from pycalico.felix.rules.table import TABLE, NftSet, Ruleset

# Bigger element changes go through `nft -f`: one netlink batch must fit the socket buffer,
# and one set's element list one netlink attribute (its length is 16 bits).
NETLINK_MAX_KEYS = 2000
NETLINK_MAX_SET_BYTES = 60_000
_KEY_OVERHEAD = 24  # a key's own attributes around its value, as pyroute2 lays them out
log = logging.getLogger("pycalico.felix")


class PolicyApplyError(RuntimeError):
    pass


def _chain_header(rules: Ruleset, name: str) -> str:
    hook = rules.base_chains.get(name)
    return f"add chain {TABLE} {name}" + (f" {{ {hook} }}" if hook else "")


def _elements(kind_name: str, elements: list[str], verb: str) -> list[str]:
    if not elements:
        return []
    return [f"{verb} element {TABLE} {kind_name} {{ {', '.join(sorted(elements))} }}"]


# Earlier pycalico versions kept NAT in a table of this name; a full write removes it.
OLD_TABLES = ("ip calico",)


def full_script(new: Ruleset) -> str:
    return _script(full_lines(new))


def full_lines(new: Ruleset) -> Iterator[str]:
    """The commands that replace the whole table with `new`, one by one (see `_send`)."""
    for old in OLD_TABLES:
        yield f"add table {old}"
        yield f"delete table {old}"
    yield from (f"add table {TABLE}", f"delete table {TABLE}", f"add table {TABLE}")
    for name in sorted(new.chains):
        yield _chain_header(new, name)
    for kind, objects in (("set", new.sets), ("map", new.maps)):
        for name, obj in sorted(objects.items()):
            yield f"add {kind} {TABLE} {name} {{ {obj.decl} }}"
            yield from _elements(name, list(obj.elements), "add")
    # The kernel marks each anonymous set (an inline `{ a, b }`) bound by walking every
    # message of the transaction so far (nf_tables' __nft_set_trans_bind), so their cost
    # grows with their place in it: the chains that hold them go first, before the tens of
    # thousands of endpoint chain rules. A chain's own rules keep their order.
    chains = sorted(new.chains.items(), key=lambda c: (not any("{" in r for r in c[1]), c[0]))
    for name, rules in chains:
        for rule in rules:
            yield f"add rule {TABLE} {name} {rule}"


def _map_keys(elements: frozenset[str]) -> dict[str, str]:
    return {e.split(" : ", 1)[0]: e for e in elements}


def diff_script(old: Ruleset, new: Ruleset) -> str:
    """The commands that turn `old` into `new`; "" when they are equal."""
    return _script(diff_lines(old, new))


def diff_lines(old: Ruleset, new: Ruleset) -> Iterator[str]:
    """The commands that turn `old` into `new`, one by one; none when they are equal."""
    added_chains = sorted(new.chains.keys() - old.chains.keys())
    for name in added_chains:
        yield _chain_header(new, name)
    for kind, before, after in (("set", old.sets, new.sets), ("map", old.maps, new.maps)):
        changed = [n for n, obj in after.items() if before.get(n) != obj]
        for name in sorted(changed):
            obj = after[name]
            if name not in before or before[name].decl != obj.decl:
                if name in before:
                    yield f"delete {kind} {TABLE} {name}"
                yield f"add {kind} {TABLE} {name} {{ {obj.decl} }}"
                yield from _elements(name, list(obj.elements), "add")
                continue
            yield from _element_changes(kind, name, before[name], obj)
    rewritten = [n for n, rules in new.chains.items() if old.chains.get(n) != rules]
    new_chains = set(added_chains)
    for name in sorted(rewritten):
        if name not in new_chains:
            yield f"flush chain {TABLE} {name}"
        for rule in new.chains[name]:
            yield f"add rule {TABLE} {name} {rule}"
    # Last: nothing refers to them any more once the chains above were rewritten. Gone
    # chains may jump to one another (an endpoint's to- and from-chains to its profile's),
    # so all are flushed before any is deleted: a chain still jumped to is busy.
    gone = sorted(old.chains.keys() - new.chains.keys())
    for name in gone:
        yield f"flush chain {TABLE} {name}"
    for name in gone:
        yield f"delete chain {TABLE} {name}"
    for kind, before, after in (("set", old.sets, new.sets), ("map", old.maps, new.maps)):
        for name in sorted(before.keys() - after.keys()):
            yield f"delete {kind} {TABLE} {name}"


def _script(lines: Iterable[str]) -> str:
    return "".join(f"{line}\n" for line in lines)


def _element_changes(kind: str, name: str, before: NftSet, after: NftSet) -> list[str]:
    if kind == "map":
        old_keys, new_keys = _map_keys(before.elements), _map_keys(after.elements)
        gone = [k for k, e in old_keys.items() if new_keys.get(k) != e]
        come = [e for k, e in new_keys.items() if old_keys.get(k) != e]
        return _elements(name, gone, "delete") + _elements(name, come, "add")
    gone_elements = list(before.elements - after.elements)
    new_elements = list(after.elements - before.elements)
    return _elements(name, gone_elements, "delete") + _elements(name, new_elements, "add")


def element_changes(old: Ruleset, new: Ruleset) -> list[nft_netlink.ElementChange] | None:
    """`old` -> `new` as netlink set element changes, deletions first; None unless that is
    all that changed, in sets whose keys `element_keys` knows, within NETLINK_MAX_KEYS."""
    if (
        old.sets.keys() != new.sets.keys()
        or old.maps != new.maps
        or old.chains != new.chains
        or old.base_chains != new.base_chains
    ):
        return None
    deletions, additions = [], []
    keys = 0
    for name, after in new.sets.items():
        before = old.sets[name]
        if before is after or before == after:
            continue
        if before.decl != after.decl or not element_keys.encodable(after.decl):
            return None
        for elements, out, add in (
            (before.elements - after.elements, deletions, False),
            (after.elements - before.elements, additions, True),
        ):
            if not elements:
                continue
            try:
                found = tuple(
                    k for e in sorted(elements) for k in element_keys.element_keys(after.decl, e)
                )
            except element_keys.UnencodableElement:
                return None
            keys += len(found)
            if sum(len(k.value) + _KEY_OVERHEAD for k in found) > NETLINK_MAX_SET_BYTES:
                return None
            out.append(nft_netlink.ElementChange(add, name, found))
    return None if keys > NETLINK_MAX_KEYS else deletions + additions


def _send(lines: Iterable[str]) -> subprocess.CompletedProcess[str] | None:
    """`nft -f` on the commands, written one by one to an anonymous in-memory file (None
    when there are none). Whole, a script was tens of MB for a thousand new endpoints (its
    lines, their join, its encoding), and the heap kept the peak after it was freed
    (bench/scale.py: calico-node fed 1000 endpoints at once kept ~8 MB more)."""
    fd = os.memfd_create("nft-script", os.MFD_CLOEXEC)
    with open(fd, "w+", encoding="utf-8") as script:
        for line in lines:
            script.write(line)
            script.write("\n")
        if not script.tell():
            return None
        script.seek(0)
        return subprocess.run(
            ["nft", "-f", "-"], stdin=script, capture_output=True, text=True, check=False
        )


@dataclass
class NftablesManager(Manager):
    applied: Ruleset | None = None
    channel: nft_netlink.Channel = field(default_factory=nft_netlink.Channel)

    def apply(self, desired: Desired) -> None:
        self.write(desired.ruleset)

    def write(self, new: Ruleset) -> bool:
        """Bring the kernel to `new`; whether anything was sent."""
        if self.applied is not None:
            changes = element_changes(self.applied, new)
            if changes is not None:
                family, table = TABLE.split()
                try:
                    self.channel.apply(family, table, changes)
                except Exception as exc:
                    # Whatever went wrong (refused, or the kernel no longer as we left it),
                    # the whole table from a known state, in this same apply.
                    log.warning("element change failed, rewriting the whole table: %s", exc)
                    self.channel.close()
                    self.applied = None
                else:
                    self.applied = new
                    return bool(changes)
        lines = full_lines(new) if self.applied is None else diff_lines(self.applied, new)
        out = _send(lines)
        if out is None:
            return False
        if out.returncode != 0:
            self.applied = None  # next time: the whole table again, from a known state
            raise PolicyApplyError(f"nft rejected the policy ruleset: {out.stderr.strip()[:500]}")
        self.applied = new
        return True

    def reset(self) -> None:
        """Forget what was applied: the next apply writes the whole table (a resync, which
        repairs whatever was changed behind Felix's back)."""
        self.applied = None

    def close(self) -> None:
        self.channel.close()
