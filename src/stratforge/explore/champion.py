"""The champion: who it is, and the bar a candidate must clear to replace it.

A generation's best, once re-raced on all selection seeds, becomes champion only if

1. it beats the champion on the selection seeds (mean paired difference > 0);
2. when it was scored through a fast ``spec``, that spec gives bit-identical per-seed edges to its
   compiled ``source`` on the check seeds (on a mismatch an alert is recorded and the compiled
   contract is scored and judged instead: what is promoted is always what the source does);
3. on the selection seeds plus fresh confirmation seeds, the one-sided paired test of "candidate
   is better" (``stratforge.stats.paired``) has p below ``1 - confidence``.

The holdout seeds never influence a decision, so by default only the champion a run ends with is
scored on them (:meth:`ChampionKeeper.score_holdout`, also after a resume); with
``holdout_every_champion`` each champion is, at its promotion. The fixed reference strategy (the
50 bps starter) is scored once per run on the same selection and holdout seeds, so the report can
tell overfitting from a holdout block that is simply harder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from stratforge.amm.solidity import CompilerUnavailable, StrategyRejected
from stratforge.amm.strategy import FixedFee, StrategySpec
from stratforge.explore.candidate import ChampionView
from stratforge.explore.config import HOLDOUT_SEED_START, REFERENCE_FEE_BPS
from stratforge.explore.scoring import Scored, Scoring, compile_candidate
from stratforge.explore.store import ChampionChange, RunStore
from stratforge.stats import paired

__all__ = ["ChampionKeeper", "ChampionState"]

Emit = Callable[[str, str, str], None]  #: (kind, message, level)


def _floats(a: np.ndarray) -> list[float]:
    return [float(v) for v in a]


@dataclass
class ChampionState:
    iteration: int
    edge: float
    selection: np.ndarray  #: per-seed edges, indexed by selection seed
    confirm: np.ndarray | None
    holdout_edge: float | None
    source: str
    template: str | None
    params: dict[str, float] | None
    spec: StrategySpec | None = None  #: None after a resume: compiled from ``source`` when needed

    def view(self) -> ChampionView:
        return ChampionView(self.edge, self.source, self.template, self.params, self.holdout_edge)


class ChampionKeeper:
    def __init__(self, scoring: Scoring, emit: Emit) -> None:
        self.scoring = scoring
        self.config = scoring.config
        self.emit = emit
        self.state: ChampionState | None = None

    # -- state ----------------------------------------------------------------------------------

    def restore(self, store: RunStore) -> None:
        champ = store.champion()
        if champ is None:
            return
        it = store.iteration(champ.iteration)
        stats = champ.stats
        confirm = stats.get("confirm_edges")
        self.state = ChampionState(
            champ.iteration,
            champ.edge,
            np.asarray(stats["selection_edges"], dtype=float),
            None if confirm is None else np.asarray(confirm, dtype=float),
            champ.holdout_edge,
            it.source if it and it.source else "",
            stats.get("template"),
            stats.get("params"),
        )

    def _spec(self) -> StrategySpec:
        assert self.state is not None
        if self.state.spec is None:
            self.state.spec = compile_candidate(self.state.source)
        return self.state.spec

    def _confirm(self) -> np.ndarray:
        assert self.state is not None
        if self.state.confirm is None:
            self.state.confirm = self.scoring.run(self._spec(), self.config.confirm_seeds())
        return self.state.confirm

    # -- the bar --------------------------------------------------------------------------------

    def selection_edges(self, scored: Scored) -> np.ndarray:
        """The member's edges indexed by selection seed (it must have run on all of them)."""
        out = np.empty(self.config.n_selection)
        out[np.asarray(scored.seeds)] = scored.edges
        return out

    def verified_spec(self, scored: Scored) -> tuple[StrategySpec, np.ndarray | None, dict[str, Any]] | None:
        """The spec to judge ``scored`` by, re-scored selection edges when that changed, and the
        check's record; None when the compiled source is rejected."""
        cand = scored.candidate
        assert scored.spec is not None
        if cand.spec is None:
            return scored.spec, None, {"checked": False, "reason": "scored as its compiled source"}
        try:
            compiled = compile_candidate(cand.source)
        except CompilerUnavailable:
            raise
        except StrategyRejected as exc:
            self.emit("alert", f"fast spec's source does not compile: {exc.problems[0]}", "warning")
            return None
        seeds = list(range(self.config.spec_check_sims))
        fast, slow = self.scoring.run(cand.spec, seeds), self.scoring.run(compiled, seeds)
        record = {"checked": True, "seeds": len(seeds), "identical": bool(np.array_equal(fast, slow))}
        if record["identical"]:
            return cand.spec, None, record
        self.emit(
            "alert",
            f"fast spec and compiled source disagree ({fast.mean():.6f} vs {slow.mean():.6f} on {len(seeds)}"
            " seeds); judging the compiled contract",
            "warning",
        )
        rescored = self.scoring.run(compiled, list(range(self.config.n_selection)))
        return compiled, rescored, record

    def consider(self, number: int, scored: Scored) -> ChampionChange | None:
        """Promote ``scored`` (the generation's best, raced on all selection seeds) if it clears the bar."""
        assert self.state is not None
        selection = self.selection_edges(scored)
        first = paired(selection, self.state.selection, self.config.confidence)
        if first.mean_diff <= 0:
            return None
        verified = self.verified_spec(scored)
        if verified is None:
            return None
        spec, rescored, check = verified
        if rescored is not None:
            selection = rescored
            if paired(selection, self.state.selection, self.config.confidence).mean_diff <= 0:
                return None
        confirm = self.scoring.run(spec, self.config.confirm_seeds())
        stats = paired(
            np.concatenate([selection, confirm]),
            np.concatenate([self.state.selection, self._confirm()]),
            self.config.confidence,
        )
        if not stats.p_greater < 1.0 - self.config.confidence:
            self.emit(
                "rejected",
                f"#{number} looked better ({stats.mean_diff:+.2f}) but not significantly (p={stats.p_greater:.2g})",
                "info",
            )
            return None
        reason = (
            f"beats champion #{self.state.iteration} by {stats.mean_diff:+.2f} edge over {stats.n} paired"
            f" simulations ({self.config.confidence:.0%} CI {stats.low:+.2f}..{stats.high:+.2f},"
            f" p={stats.p_greater:.2g})"
        )
        return self.promote(
            number, scored, spec, selection, confirm, reason, {"paired": stats.to_json(), "spec_check": check}
        )

    def promote(
        self,
        number: int,
        scored: Scored,
        spec: StrategySpec,
        selection: np.ndarray,
        confirm: np.ndarray | None,
        reason: str,
        extra: dict[str, Any],
    ) -> ChampionChange:
        cand = scored.candidate
        edge, holdout_edge = float(selection.mean()), None
        stats = {
            "selection_edges": _floats(selection),
            "confirm_edges": None if confirm is None else _floats(confirm),
            "template": cand.template,
            "params": cand.params,
            **extra,
        }
        if self.config.holdout_every_champion:
            holdout = self._holdout_stats(spec)
            holdout_edge = float(np.mean(holdout["holdout_edges"]))
            stats.update(holdout)
        self.state = ChampionState(
            number, edge, selection, confirm, holdout_edge, cand.source, cand.template, cand.params, spec
        )
        shown = "" if holdout_edge is None else f", holdout {holdout_edge:.2f}"
        self.emit("champion", f"new champion #{number}: {edge:.2f}{shown} ({reason})", "info")
        return ChampionChange(edge, reason, stats, holdout_edge)

    def _holdout_stats(self, spec: StrategySpec) -> dict[str, Any]:
        holdout = self.scoring.run(spec, self.config.holdout_seeds())
        return {"holdout_edges": _floats(holdout), "holdout_seeds": [HOLDOUT_SEED_START, len(holdout)]}

    def score_holdout(self, store: RunStore) -> float:
        """Score the current champion on the holdout seeds (the end of a run); written to its
        champion record at once. Returns its holdout edge."""
        assert self.state is not None
        champ = store.champion()
        if champ is None or champ.iteration != self.state.iteration:
            raise RuntimeError("the store's champion is not the one in memory")
        stats = self._holdout_stats(self._spec())
        self.state.holdout_edge = float(np.mean(stats["holdout_edges"]))
        store.set_champion_holdout(champ.id, self.state.holdout_edge, stats)
        store.add_event(
            "holdout",
            f"champion #{champ.iteration}: holdout {self.state.holdout_edge:.2f} over"
            f" {len(stats['holdout_edges'])} simulations",
        )
        return self.state.holdout_edge

    def install_starter(self, scored: Scored) -> ChampionChange:
        """Iteration 0: the starter (already raced on all selection seeds) is the first champion; the
        fixed reference strategy is scored on the selection and holdout seeds next to it."""
        verified = self.verified_spec(scored)
        if verified is None:
            raise RuntimeError("the shipped starter strategy does not compile")
        spec, rescored, check = verified
        selection = rescored if rescored is not None else self.selection_edges(scored)
        reference = FixedFee(REFERENCE_FEE_BPS)
        ref = {
            "name": f"fixed {REFERENCE_FEE_BPS:g} bps (the starter)",
            "selection_edges": _floats(self.scoring.run(reference, list(range(self.config.n_selection)))),
            "holdout_edges": _floats(self.scoring.run(reference, self.config.holdout_seeds())),
        }
        reason = "starting point: the challenge's 50 bps starter"
        return self.promote(0, scored, spec, selection, None, reason, {"spec_check": check, "reference": ref})
