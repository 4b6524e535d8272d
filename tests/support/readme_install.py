"""The README's "Install on a host" section as tests run it: its shell commands, as written.

The install tests run the README's install command itself (with `--root` added), so that
the README cannot drift from what works; the multi-host suite runs the whole section.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Install on a host"


def blocks() -> list[list[str]]:
    """The section's `sh` blocks in order, each its commands, continuation lines joined."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n{SECTION}\n")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end != -1 else len(text)]
    return [
        [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]
        for block in re.findall(r"^```sh\n(.*?)^```$", section, re.DOTALL | re.MULTILINE)
    ]


def commands() -> list[str]:
    """Every command of the section's `sh` blocks, in order, continuation lines joined."""
    return [command for block in blocks() for command in block]


def command(containing: str) -> str:
    """The one command of the section that contains `containing`."""
    (found,) = [c for c in commands() if containing in c]
    return found


def settings(install_command: str) -> tuple[str, ...]:
    """The NAME=VALUE settings an install command passes."""
    words = shlex.split(install_command)
    after = words[words.index("install") + 1 :]
    return tuple(w for w in after if re.fullmatch(r"[A-Z][A-Z0-9_]*=.*", w))
