"""Stopping a run from outside: the stop file, SIGINT/SIGTERM, and the pid file that shows it runs.

* ``stratforge explore stop`` writes ``STOP`` in the run directory: the run finishes the iteration
  in flight and exits.
* the first SIGINT/SIGTERM does the same; a second one raises :class:`StopNow` wherever the run
  is, so it exits at once (the iteration in flight was never written and is re-run on resume).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType, TracebackType

STOP_FILE = "STOP"
PID_FILE = "explorer.pid"

__all__ = ["PID_FILE", "STOP_FILE", "RunControl", "StopNow", "request_stop"]


class StopNow(BaseException):
    """A second signal: stop at once, without finishing the iteration. A BaseException (like
    KeyboardInterrupt) so that no ``except Exception`` on the way can swallow it."""


class RunControl:
    """Signal handlers, stop file and pid file of one running explorer (a context manager)."""

    def __init__(self, state_dir: Path, on_signal: Callable[[str], None] = lambda message: None) -> None:
        self.state_dir = Path(state_dir)
        self.on_signal = on_signal
        self.reason: str | None = None  #: set once the run should stop after this iteration
        self._signals = 0
        self._previous: dict[int, object] = {}

    def __enter__(self) -> RunControl:
        (self.state_dir / STOP_FILE).unlink(missing_ok=True)
        (self.state_dir / PID_FILE).write_text(str(os.getpid()))
        self._previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)  # type: ignore[arg-type]
        (self.state_dir / PID_FILE).unlink(missing_ok=True)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals >= 2:
            raise StopNow
        self.reason = f"signal {signal.Signals(signum).name}: finishing the current iteration"
        self.on_signal("stopping after this iteration (signal again to stop now)")

    def stop_now_if_asked(self) -> None:
        """Raise StopNow after a second signal. The handler raises it too, but a hook exception
        inside the simulator counts as a failed hook, so long computations call this between steps."""
        if self._signals >= 2:
            raise StopNow

    def stop_after_iteration(self, reason: str) -> None:
        self.reason = self.reason or reason

    def check(self) -> str | None:
        """The reason to stop after this iteration, if any (the stop file counts)."""
        if (self.state_dir / STOP_FILE).exists():
            self.stop_after_iteration("stop requested (stratforge explore stop)")
        return self.reason


def request_stop(state_dir: Path) -> bool:
    """Ask a running explorer to finish its iteration and exit; True if one seems to be running."""
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / STOP_FILE).write_text(str(time.time()))
    pid_file = state_dir / PID_FILE
    if not pid_file.exists():
        return False
    try:
        os.kill(int(pid_file.read_text()), 0)
    except (OSError, ValueError):
        return False
    return True
