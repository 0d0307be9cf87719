"""Rate limiting, retry backoff with jitter, Retry-After parsing and a circuit breaker.

Time is injected (`Clock`) so tests run deterministic and instant with `FakeClock`; jitter comes
from a seeded `random.Random`.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from stratforge.explore.llm.types import CircuitOpen


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...

    def now(self) -> float:
        """Wall-clock seconds since the epoch (for HTTP-date Retry-After)."""
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def now(self) -> float:
        return time.time()


class FakeClock:
    """A clock whose sleep advances time instantly; records every sleep for assertions."""

    def __init__(self, start: float = 1000.0, wall: float = 1_700_000_000.0) -> None:
        self.t = start
        self.wall0 = wall - start
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += max(0.0, seconds)

    def now(self) -> float:
        return self.wall0 + self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date. None if absent/invalid."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - datetime.fromtimestamp(now, UTC).timestamp())


class RateLimiter:
    """Enforces a minimum interval between call starts (shared by threads using one backend)."""

    def __init__(self, min_interval_s: float, clock: Clock) -> None:
        self.min_interval_s = min_interval_s
        self.clock = clock
        self._last: float | None = None
        self._lock = threading.Lock()

    def wait(self) -> float:
        """Sleep until the next call may start; returns how long it slept."""
        with self._lock:
            slept = 0.0
            if self._last is not None and self.min_interval_s > 0:
                due = self._last + self.min_interval_s
                slept = max(0.0, due - self.clock.monotonic())
                self.clock.sleep(slept)
            self._last = self.clock.monotonic()
            return slept


@dataclass
class Backoff:
    """Exponential backoff with "equal jitter": half the delay fixed, half uniform random."""

    base_s: float
    max_s: float
    rng: random.Random

    def delay(self, attempt: int) -> float:
        """Delay before retry number ``attempt`` (0-based)."""
        d = min(self.max_s, self.base_s * (2**attempt))
        return d / 2 + self.rng.uniform(0, d / 2)


class CircuitBreaker:
    """Closed -> open after ``threshold`` consecutive failures -> half-open after ``cooldown_s``.

    Half-open lets one trial call through: success closes the circuit, failure re-opens it.
    """

    def __init__(self, threshold: int, cooldown_s: float, clock: Clock) -> None:
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.clock = clock
        self.failures = 0
        self.opened_at: float | None = None
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        with self._lock:
            return self._state()

    def _state(self) -> str:
        if self.opened_at is None:
            return "closed"
        if self.clock.monotonic() - self.opened_at >= self.cooldown_s:
            return "half-open"
        return "open"

    def retry_in(self) -> float:
        """Seconds until a call may be sent (0 when closed or half-open)."""
        with self._lock:
            if self._state() != "open":
                return 0.0
            return max(0.0, self.cooldown_s - (self.clock.monotonic() - (self.opened_at or 0.0)))

    def before_call(self) -> None:
        left = self.retry_in()
        if left > 0:
            raise CircuitOpen(
                f"circuit open after {self.failures} consecutive failures; retry in {left:.0f}s",
                retry_in_s=left,
            )

    def success(self) -> None:
        with self._lock:
            self.failures = 0
            self.opened_at = None

    def failure(self) -> None:
        with self._lock:
            half_open = self._state() == "half-open"
            self.failures += 1
            if half_open or self.failures >= self.threshold:
                self.opened_at = self.clock.monotonic()
