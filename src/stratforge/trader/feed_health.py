"""Feed health: is each websocket feed delivering, and since when not.

The live runner calls :meth:`FeedHealth.seen` for every message of a feed and :meth:`FeedHealth.check`
every tick. Until its first message a feed is ``starting``; with no message for ``stale_after_s``
(or none at all ``stale_after_s`` after the start) it is ``stale``. Either way the health endpoint
reports ``degraded`` and the safety rules refuse new entries (features need both feeds; exits keep
running, and positions on a dead book close through the stale-book rule); the worker alerts once
when a feed goes stale. The clock is injected, so tests decide
what time it is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

OK, STARTING, STALE = "ok", "starting", "stale"


class FeedHealth:
    def __init__(
        self, names: Iterable[str], stale_after_s: float = 30.0, clock: Callable[[], float] = time.time
    ) -> None:
        self.stale_after_s = stale_after_s
        self.clock = clock
        start = clock()
        self._since: dict[str, float] = {n: start for n in names}  # last message, or the start
        self._last: dict[str, float | None] = {n: None for n in names}
        self._status: dict[str, str] = {n: STARTING for n in names}

    def seen(self, name: str, t: float | None = None) -> None:
        """A message of feed ``name`` arrived (at ``t``, default now)."""
        t = self.clock() if t is None else t
        self._last[name] = t
        self._since[name] = t

    def reset(self, name: str) -> None:
        """A feed was (re)started: give it ``stale_after_s`` from now before calling it stale."""
        self._since[name] = self.clock()
        self._last[name] = None

    def check(self) -> list[tuple[str, str, str]]:
        """Re-evaluate every feed; returns the transitions ``(name, old status, new status)``."""
        now = self.clock()
        changes = []
        for name, since in self._since.items():
            if now - since > self.stale_after_s:
                new = STALE
            else:
                new = OK if self._last[name] is not None else STARTING
            old = self._status[name]
            if new != old:
                self._status[name] = new
                changes.append((name, old, new))
        return changes

    def status(self) -> dict[str, str]:
        return dict(self._status)

    def age(self, name: str) -> float | None:
        """Seconds since the feed's last message (None before the first)."""
        last = self._last[name]
        return None if last is None else self.clock() - last

    def problem(self) -> str | None:
        """A one-line description of the feeds that are not ok, or None when all are."""
        bad = [n for n, s in self._status.items() if s != OK]
        if not bad:
            return None
        parts = []
        for n in bad:
            age = self.age(n)
            parts.append(f"{n} silent for {age:.0f}s" if age is not None else f"{n} never delivered")
        return "; ".join(parts)
