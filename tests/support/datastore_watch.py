"""Reading a datastore watch in tests: how long to wait, and the next events."""

from __future__ import annotations

from pycalico.datastore.backend import Event, Watch

# Long enough for a loaded 2-core machine, short enough that a hang fails the run.
WAIT = 10.0


def next_events(watch: Watch, count: int) -> list[Event]:
    """Up to `count` events, stopping early if none arrives within WAIT."""
    events: list[Event] = []
    while len(events) < count:
        event = watch.next(timeout=WAIT)
        if event is None:
            break
        events.append(event)
    return events
