"""Process-tree helpers for the tests that kill a parent and check that nothing it started survives."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads the process tree in /proc"
)


def alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (dead, not yet reaped by a busy init) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return not sys.platform.startswith("linux")
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (children, grandchildren, ...), from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found and alive(child):
                found.add(child)
                todo.append(child)
    return found


def wait_until(condition, what: str, timeout_s: float = 600.0) -> None:
    """Poll ``condition``; the deadline only turns a hang into a clear failure, it is not measured."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.1)


def assert_all_exit(pids: set[int], timeout_s: float = 600.0) -> None:
    """Every pid in ``pids`` exits within ``timeout_s`` (generous: they normally go within a second)."""
    wait_until(
        lambda: not any(alive(p) for p in pids),
        f"processes {sorted(p for p in pids if alive(p))} to exit",
        timeout_s,
    )
