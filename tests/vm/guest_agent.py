"""The agent inside a multi-host guest: runs the host's commands, one at a time.

It is copied into the guest's job directory and run by Debian's own /usr/bin/python3 (the
guest may not see the checkout or its venv), so it uses the standard library only. It
talks over a virtio-serial port: each request is one JSON line
`{"argv": [...], "timeout": s, "input": str|null, "env": {...}|null}` and each answer one
JSON line `{"rc": int, "stdout": str, "stderr": str}` (rc -1: timed out, or could not
start). Once the port is open it touches the file given as its second argument, so the
host knows it can talk.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PORTS = Path("/sys/class/virtio-ports")


def port_device(name: str) -> str:
    for port in PORTS.iterdir():
        if (port / "name").read_text().strip() == name:
            return f"/dev/{port.name}"
    raise SystemExit(f"guest agent: no virtio port named {name}")


def answer(request: dict[str, Any]) -> dict[str, Any]:
    env = {**os.environ, **(request.get("env") or {})}
    try:
        done = subprocess.run(
            request["argv"],
            input=request.get("input"),
            capture_output=True,
            text=True,
            errors="replace",
            timeout=request.get("timeout"),
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired as expired:
        out = expired.stdout or b""
        text = out.decode(errors="replace") if isinstance(out, bytes) else out
        return {"rc": -1, "stdout": text, "stderr": f"timed out after {expired.timeout}s"}
    except OSError as exc:
        return {"rc": -1, "stdout": "", "stderr": f"could not run {request['argv']}: {exc}"}
    return {"rc": done.returncode, "stdout": done.stdout, "stderr": done.stderr}


def main() -> None:
    port_name, ready_file = sys.argv[1], sys.argv[2]
    with open(port_device(port_name), "r+b", buffering=0) as port:
        Path(ready_file).touch()
        pending = b""
        while True:
            chunk = port.read(65536)
            if not chunk:  # no host connected to the port (yet): reads return at once
                time.sleep(0.05)
                continue
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                reply = answer(json.loads(line))
                data = memoryview(json.dumps(reply).encode() + b"\n")
                while data:
                    data = data[port.write(data) :]


if __name__ == "__main__":
    main()
