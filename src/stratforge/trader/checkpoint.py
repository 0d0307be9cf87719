"""The recovery checkpoint: everything a killed worker needs to continue exactly where it stopped.

Stored in ``sessions.checkpoint_data`` in the same transaction as the trades of the tick it follows
(:meth:`stratforge.trader.storage.Store.commit_tick`), so the database always holds a consistent
"after tick t" state. Open positions are not in it: they are the session's open ``trades`` rows.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

VERSION = 2


class CheckpointError(ValueError):
    """A stored checkpoint this version cannot resume from (the message says what to do)."""


@dataclass
class EngineState:
    """The decision engine's state after a tick (see :meth:`DecisionEngine.state`)."""

    cursor: float  # time of the last committed tick
    safety: dict[str, Any] = field(default_factory=dict)  # Safety.to_dict()
    histories: dict[str, list[list[float]]] = field(default_factory=dict)  # market -> feature rows
    outcomes: dict[str, list[Any]] = field(default_factory=dict)  # market -> [up_wins, source]
    retired: list[str] = field(default_factory=list)  # markets already settled and forgotten (recent)
    last_safety: float | None = None
    counters: dict[str, int] = field(default_factory=dict)
    trips: dict[str, int] = field(default_factory=dict)
    failed_exits: dict[str, str] = field(default_factory=dict)  # trade id -> rule


@dataclass
class Checkpoint:
    engine: EngineState
    journal: dict[str, Any] = field(default_factory=dict)  # the journal's own timers (metrics, day)

    @property
    def cursor(self) -> float:
        return self.engine.cursor

    def to_dict(self) -> dict[str, Any]:
        return {"version": VERSION, "engine": asdict(self.engine), "journal": dict(self.journal)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Checkpoint:
        if data.get("version") != VERSION:
            raise CheckpointError(
                f"the session's checkpoint has format {data.get('version', 1)}, this worker reads "
                f"{VERSION}; start a new session with --no-resume"
            )
        eng = dict(data["engine"])
        if eng.get("last_safety") is not None and not math.isfinite(eng["last_safety"]):
            eng["last_safety"] = None
        return cls(EngineState(**eng), dict(data.get("journal") or {}))
