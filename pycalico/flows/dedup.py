"""Which records the aggregator has already taken, by each sender's sequence numbers (pure).

Every sender (one Felix; its identity survives its restarts when it keeps a spool) numbers
its records 1, 2, 3... and sends them in order over one connection at a time; after a
reconnect it sends again, in order, everything the aggregator may not have (all it still
caches, if the aggregator says it knows nothing of it). A record is new exactly when its
number is above the highest taken from its sender, so a resent record is taken once
however often it comes, and, because each connection's records come in order and
without gaps, none is skipped — even when an old connection is still being read while
its replacement already sends (both present every number in order; the first to present
one takes it).

Goldmane deduplicates by keeping every flow it received for 5 minutes and comparing
contents; numbering costs one integer per sender instead, and two identical records
(two connections each worth one flow log) are both counted, as they should be.
"""

from __future__ import annotations


class SequenceDedup:
    def __init__(self) -> None:
        self._highest: dict[str, int] = {}

    def highest(self, sender: str) -> int:
        """The highest number taken from `sender`; 0 when none was."""
        return self._highest.get(sender, 0)

    def take(self, sender: str, seq: int) -> bool:
        """Whether record `seq` of `sender` is new; if it is, it counts as taken."""
        if seq <= self._highest.get(sender, 0):
            return False
        self._highest[sender] = seq
        return True

    def senders(self) -> int:
        return len(self._highest)
