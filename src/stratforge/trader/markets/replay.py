"""JSONL replay files of real feed message shapes (see docs/replay-format.md).

One JSON object per line: ``{"t": <receive time, ms>, "src": "polymarket" | "binance" | "meta",
"data": <the raw payload as the venue sent it>}``. The reader parses payloads with the same
`messages.from_raw` the live feeds use, so a replay drives exactly the state code of live trading.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from stratforge.trader.markets.messages import (
    MarketInfo,
    MarketResolved,
    Message,
    Resolution,
    from_raw,
    to_raw,
)
from stratforge.trader.markets.session import Session

log = logging.getLogger(__name__)


class ReplayError(ValueError):
    """A replay file that cannot be read; the message names the line."""


RESOLUTION_MODES = ("venue", "meta", "both", "none")


def write_session(session: Session, path: str | Path, resolutions: str = "both") -> int:
    """Write a session (markets, feed messages, resolutions) as JSONL. Returns the line count.

    ``resolutions``: ``venue`` keeps only the venue's ``market_resolved`` events (what `trader record`
    captures), ``meta`` only our ``meta`` resolution records (the resolution source's prices),
    ``both``, or ``none`` (settlement then falls back to the futures prices, flagged)."""
    if resolutions not in RESOLUTION_MODES:
        raise ValueError(f"resolutions must be one of {', '.join(RESOLUTION_MODES)}")
    venue = resolutions in ("venue", "both")
    meta = resolutions in ("meta", "both")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w") as fh:
        # Market definitions first: they are known (Gamma API) before their books stream.
        for m in session.markets:
            n += _write(fh, m.window_start, m)
        events: list[tuple[float, Message]] = [
            (m.ts, m) for m in session.messages if venue or not isinstance(m, MarketResolved)
        ]
        if meta:
            events += [(r.ts, r) for r in session.resolutions.values()]
        events.sort(key=lambda e: e[0])
        for t, msg in events:
            n += _write(fh, t, msg)
    return n


def _write(fh: IO[str], t: float, msg: Message) -> int:
    src, raw = to_raw(msg)
    fh.write(json.dumps({"t": int(round(t * 1000)), "src": src, "data": raw}, separators=(",", ":")))
    fh.write("\n")
    return 1


def iter_messages(path: str | Path) -> Iterator[tuple[float, Message]]:
    """Stream (receive time in s, typed message) from a replay file.

    A recording cut by a kill ends in a partial line (no newline, not valid JSON): it is skipped, so
    the file reads up to its last complete line. A bad line anywhere else is an error naming it."""
    path = Path(path)
    if not path.exists():
        raise ReplayError(f"replay file not found: {path}")
    with path.open() as fh:
        for lineno, raw_line in enumerate(fh, 1):
            line = raw_line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
                t = float(rec["t"]) / 1000.0
                msgs = from_raw(rec["src"], rec["data"])
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                if not raw_line.endswith("\n") and isinstance(exc, json.JSONDecodeError):
                    log.warning("%s:%d: partial last line (recording cut short), ignored", path, lineno)
                    return
                raise ReplayError(f"{path}:{lineno}: bad replay line ({exc})") from exc
            for m in msgs:
                yield t, m


def read_session(path: str | Path) -> Session:
    """Load a whole replay file into a Session ordered by receive time."""
    markets: list[MarketInfo] = []
    resolutions: dict[str, Resolution] = {}
    feed: list[tuple[float, int, Message]] = []
    for k, (t, m) in enumerate(iter_messages(path)):
        if isinstance(m, MarketInfo):
            markets.append(m)
        elif isinstance(m, Resolution):
            resolutions[m.condition_id] = m
        else:
            if not m.ts:
                m.ts = t  # payloads without an event time use the receive time
            feed.append((t, k, m))
    if not markets:
        raise ReplayError(f"{path}: no market definitions (meta 'market' lines)")
    feed.sort(key=lambda e: (e[0], e[1]))
    msgs = [m for _, _, m in feed]
    # The env orders by event time; keep receive order but make event times non-decreasing.
    last = float("-inf")
    for m in msgs:
        if m.ts < last:
            m.ts = last
        last = m.ts
    return Session(markets, msgs, resolutions)
