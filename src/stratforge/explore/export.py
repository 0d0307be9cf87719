"""``stratforge explore export``: the champion as a submission-ready ``Strategy.sol``.

The champion's own source (every candidate is already ``contract Strategy is AMMStrategyBase``),
with ``getName`` returning a chosen name and a header comment carrying its scores (selection and
holdout edge, simulations, date); the result is checked with the challenge's rules (validation,
compilation, bytecode and storage checks) before it is written.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

from stratforge.amm import soltext
from stratforge.amm.solidity import check_solidity
from stratforge.explore.store import RunStore
from stratforge.files import atomic_write_text

__all__ = ["ExportError", "Exported", "export_champion", "render_submission"]

_GET_NAME = re.compile(r"\bfunction\s+getName\s*\([^)]*\)[^{;]*\{")
_SAFE = re.compile(r"[^A-Za-z0-9 _.:#+-]")


class ExportError(ValueError):
    """Nothing to export, or the export does not pass the challenge's rules."""


@dataclass(frozen=True)
class Exported:
    path: Path
    name: str
    edge: float
    holdout_edge: float | None


def _set_name(source: str, name: str) -> str:
    """``source`` with getName's returned string literal replaced by ``name``."""
    code = soltext.blank(source)
    m = _GET_NAME.search(code)
    if m is None:
        raise ExportError("the champion has no getName function")
    depth, i = 1, m.end()
    while i < len(code) and depth:
        depth += {"{": 1, "}": -1}.get(code[i], 0)
        i += 1
    for start, end, kind in soltext.segments(source[m.end() : i]):
        if kind == "string":
            a, b = m.end() + start, m.end() + end
            return source[:a] + f'"{name}"' + source[b:]
    raise ExportError("the champion's getName does not return a string literal")


def render_submission(
    store: RunStore, name: str | None = None, today: dt.date | None = None
) -> tuple[str, str]:
    """(Strategy.sol text, strategy name) for the run's champion."""
    champ = store.champion()
    it = None if champ is None else store.iteration(champ.iteration)
    if champ is None or it is None or not it.source:
        raise ExportError(f"no champion in {store.root}")
    label = _SAFE.sub("", name or f"stratforge champion #{champ.iteration}")[:60] or "stratforge champion"
    source = _set_name(it.source, label)
    sel = len(champ.stats.get("selection_edges") or [])
    conf = len(champ.stats.get("confirm_edges") or [])
    hold = champ.stats.get("holdout_seeds") or [None, 0]
    header = [
        f"// {label}: exported by `stratforge explore export` on {(today or dt.date.today()).isoformat()}",
        f"// selection edge {champ.edge:.2f} over {sel} simulations (seeds 0..{sel - 1})"
        + (f", confirmed on {conf} fresh seeds" if conf else ""),
    ]
    if champ.holdout_edge is not None:
        header.append(
            f"// holdout edge {champ.holdout_edge:.2f} over {hold[1]} simulations (seeds from {hold[0]})"
        )
    header.append(f"// promotion: {champ.reason}")
    lines = source.split("\n")
    at = 1 if lines and "SPDX-License-Identifier" in lines[0] else 0  # the SPDX line stays first
    return "\n".join(lines[:at] + header + lines[at:]), label


def export_champion(store: RunStore, out: Path, name: str | None = None) -> Exported:
    text, label = render_submission(store, name)
    check_solidity(text)  # raises StrategyRejected with every problem
    atomic_write_text(out, text)
    champ = store.champion()
    assert champ is not None
    return Exported(out, label, champ.edge, champ.holdout_edge)
