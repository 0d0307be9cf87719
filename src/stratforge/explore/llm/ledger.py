"""`CostLedger`: token and USD accounting with one budget shared by every backend of a run."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from stratforge.explore.llm.types import BudgetExceeded


def price_usd(input_tokens: int, output_tokens: int, per_mtok_in: float, per_mtok_out: float) -> float:
    """Cost of one call from per-million-token prices."""
    return (input_tokens * per_mtok_in + output_tokens * per_mtok_out) / 1_000_000


@dataclass(frozen=True)
class LedgerEntry:
    ts: float
    backend: str
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    cached: bool
    key: str
    ok: bool = True


class CostLedger:
    """Thread-safe running totals; optionally appended to a JSONL file so totals survive a restart.

    ``check()`` is called before every send: once spent >= budget, new calls raise `BudgetExceeded`.
    A call already in flight may overshoot the cap by its own cost; nothing new starts afterwards.
    """

    def __init__(self, budget_usd: float | None = None, path: str | Path | None = None) -> None:
        self.budget_usd = budget_usd
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        self.entries: list[LedgerEntry] = []
        if self.path and self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    self.entries.append(LedgerEntry(**json.loads(line)))
                except (ValueError, TypeError):
                    continue  # a torn last line from a crash is skipped, not fatal

    @property
    def spent_usd(self) -> float:
        with self._lock:
            return sum(e.cost_usd for e in self.entries)

    @property
    def input_tokens(self) -> int:
        with self._lock:
            return sum(e.input_tokens for e in self.entries if not e.cached)

    @property
    def output_tokens(self) -> int:
        with self._lock:
            return sum(e.output_tokens for e in self.entries if not e.cached)

    @property
    def calls(self) -> int:
        with self._lock:
            return sum(1 for e in self.entries if not e.cached)

    def check(self) -> None:
        """Raise `BudgetExceeded` if the budget is already spent."""
        if self.budget_usd is None:
            return
        spent = self.spent_usd
        if spent >= self.budget_usd:
            raise BudgetExceeded(f"LLM budget spent: ${spent:.4f} of ${self.budget_usd:.4f}; no new calls")

    def record(
        self,
        *,
        backend: str,
        model: str,
        input_tokens: int,
        output_tokens: int,
        cost_usd: float,
        cached: bool = False,
        key: str = "",
        ok: bool = True,
    ) -> LedgerEntry:
        entry = LedgerEntry(
            ts=time.time(),
            backend=backend,
            model=model,
            input_tokens=int(input_tokens),
            output_tokens=int(output_tokens),
            cost_usd=float(cost_usd),
            cached=cached,
            key=key,
            ok=ok,
        )
        with self._lock:
            self.entries.append(entry)
            if self.path:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(asdict(entry)) + "\n")
        return entry

    def summary(self) -> dict[str, float | int | None]:
        with self._lock:
            live = [e for e in self.entries if not e.cached]
            return {
                "calls": len(live),
                "cache_hits": sum(1 for e in self.entries if e.cached),
                "input_tokens": sum(e.input_tokens for e in live),
                "output_tokens": sum(e.output_tokens for e in live),
                "spent_usd": sum(e.cost_usd for e in self.entries),
                "budget_usd": self.budget_usd,
            }
