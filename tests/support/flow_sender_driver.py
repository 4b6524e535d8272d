"""A FlowSender in a process of its own, for tests that kill and restart the sending side.

Commands on stdin, one answer line each on stdout:
    send N P      queue N records, one connection each, to ports P, P+1, ... -> queued N
    flush S       wait up to S seconds for every record to be acknowledged  -> flushed|timeout
    stats         the sender's counters as JSON
End of input closes the sender.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import asdict

from pycalico.flows.sender import FlowSender
from tests.support.flow_records import flow


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--spool")
    opts = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    sender = FlowSender(
        opts.server, sender_id="driver", spool_dir=opts.spool, retry_first=0.2, retry_max=0.5
    ).start()
    try:
        for line in sys.stdin:
            words = line.split()
            if words[0] == "send":
                count, first = int(words[1]), int(words[2])
                now = int(time.time())
                for i in range(count):
                    if not sender.send(flow(start=now, end_time=now, dest_port=first + i)):
                        break
                answer = f"queued {count}"
            elif words[0] == "flush":
                answer = "flushed" if sender.flush(float(words[1])) else "timeout"
            elif words[0] == "stats":
                answer = json.dumps({**asdict(sender.stats), "sender": sender.sender})
            else:
                answer = f"unknown command {words[0]}"
            sys.stdout.write(answer + "\n")
            sys.stdout.flush()
    finally:
        sender.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
