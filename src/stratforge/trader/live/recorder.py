"""Record live feeds to a replay file (JSON Lines, the markets engineer's replay format).

Each line is one raw venue payload with its source and our receive time, so a recording replays
through exactly the parser the live worker uses. Market definitions from discovery are written as
``meta`` records first. Each line is written whole and flushed as it arrives, so a killed recorder
keeps everything written: the reader skips a partial last line, and appending to a cut recording
first drops that partial line, so the file stays one valid record per line. The CLOB feed subscribes
with ``custom_feature_enabled`` so the venue's ``market_resolved`` events are recorded too.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import IO, Any

from stratforge.trader.markets.messages import MarketInfo, to_raw


def replay_line(source: str, raw: dict[str, Any], recv_ts: float) -> str:
    """One replay record (``t`` receive time in ms, ``src``, ``data``); see docs/replay-format.md."""
    return json.dumps({"t": int(round(recv_ts * 1000)), "src": source, "data": raw}, separators=(",", ":"))


class ReplayWriter:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _drop_partial_last_line(self.path)
        self._fh: IO[str] = self.path.open("a", encoding="utf-8")
        self.count = 0

    def write(self, source: str, raw: dict[str, Any], recv_ts: float | None = None) -> None:
        # One write per record: a kill leaves at most one partial line at the end.
        self._fh.write(replay_line(source, raw, time.time() if recv_ts is None else recv_ts) + "\n")
        self._fh.flush()
        self.count += 1

    def write_market(self, info: MarketInfo) -> None:
        source, raw = to_raw(info)
        self.write(source, raw, info.window_start)

    def close(self) -> None:
        self._fh.close()


def _drop_partial_last_line(path: Path) -> None:
    """Truncate a recording cut mid-line back to its last complete line (appends then stay valid)."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as fh:
        fh.seek(-1, 2)
        if fh.read(1) == b"\n":
            return
        size = fh.seek(0, 2)
        block = 1 << 16
        pos = size
        while pos > 0:
            step = min(block, pos)
            pos -= step
            fh.seek(pos)
            chunk = fh.read(step)
            k = chunk.rfind(b"\n")
            if k >= 0:
                fh.truncate(pos + k + 1)
                return
        fh.truncate(0)


async def record(
    feeds: list[AsyncIterator[tuple[str, dict[str, Any]]]],
    writer: ReplayWriter,
    duration_s: float,
    on_message: Callable[[int], None] | None = None,
) -> int:
    """Write every message of ``feeds`` for ``duration_s`` seconds; returns the number written."""

    async def pump(feed: AsyncIterator[tuple[str, dict[str, Any]]]) -> None:
        async for source, raw in feed:
            writer.write(source, raw)
            if on_message is not None:
                on_message(writer.count)

    tasks = [asyncio.create_task(pump(f)) for f in feeds]
    try:
        await asyncio.wait(tasks, timeout=duration_s)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for f in feeds:
            close = getattr(f, "close", None)
            if close is not None:
                close()
    return writer.count
