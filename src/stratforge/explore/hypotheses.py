"""The hypotheses an exploration covers: loaded in one place, with one merge rule.

The shipped file (``explore/hypotheses.json``) holds the six core hypotheses; a run may add its own
file (``--hypotheses`` / ``ExploreConfig.hypotheses_file``, same JSON shape or a bare list). The
merge rule: shipped ones first, in file order, then each user file's; an entry whose id already
exists *replaces* the earlier one in place. A run records its file in the store's config, and
everything that reads a run (loop, prompts, status, monitor, report) goes through
:func:`run_hypotheses`, so they all see the same list.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stratforge.explore.store import RunStore

HYPOTHESES_FILE = Path(__file__).resolve().parent / "hypotheses.json"

__all__ = ["HYPOTHESES_FILE", "Hypothesis", "least_explored", "load_hypotheses", "run_hypotheses"]


@dataclass(frozen=True)
class Hypothesis:
    id: str
    title: str
    description: str
    guidance: str


def load_hypotheses(extra: Iterable[Path | str] = ()) -> list[Hypothesis]:
    """The shipped hypotheses, then each user file's (same id: the user's version replaces ours)."""
    merged: dict[str, Hypothesis] = {}
    for path in [HYPOTHESES_FILE, *map(Path, extra)]:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: cannot read hypotheses ({exc})") from exc
        items = data.get("hypotheses", []) if isinstance(data, dict) else data
        for h in items:
            try:
                merged[h["id"]] = Hypothesis(h["id"], h["title"], h["description"], h.get("guidance", ""))
            except (KeyError, TypeError) as exc:
                raise ValueError(f"{path}: every hypothesis needs id, title and description ({exc})") from exc
    return list(merged.values())


def run_hypotheses(store: RunStore) -> list[Hypothesis]:
    """The hypotheses of the run in ``store``: the shipped ones merged with the run's own file."""
    extra = (store.run_info().config or {}).get("hypotheses_file")
    return load_hypotheses([extra] if extra else [])


def least_explored(hypotheses: Sequence[Hypothesis], coverage: Mapping[str, Mapping[str, Any]]) -> Hypothesis:
    """Fewest finished iterations first; ties: lower best edge (unexplored = lowest), then file order."""
    if not hypotheses:
        raise ValueError("no hypotheses")

    def key(item: tuple[int, Hypothesis]) -> tuple[int, float, int]:
        i, h = item
        c = coverage.get(h.id, {})
        best = c.get("best_edge")
        return int(c.get("iterations", 0)), float("-inf") if best is None else float(best), i

    return min(enumerate(hypotheses), key=key)[1]
