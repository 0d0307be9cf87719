"""What an exploration run depends on (``ExploreConfig``) and the seed sets it scores on.

Three disjoint seed sets:

* *selection* seeds ``0 .. max(stages)-1`` (like the challenge's own scoring): every decision is
  made on them. A generation's members race on a rotating window of them (common random numbers);
  the best member and every champion are scored on all of them.
* *confirmation* seeds from ``CONFIRM_SEED_START``: fresh seeds a would-be champion must also win on.
* *holdout* seeds from ``HOLDOUT_SEED_START``: never used for a decision; the run's final champion
  (or, with ``holdout_every_champion``, each champion) and the fixed reference strategy are scored
  on them, so overfitting shows up as a gap the reference does not have.

The config is stored in the run; ``--resume`` continues with the stored settings except the exit
conditions and the compute settings (:data:`RESUME_OVERRIDES`), which the resuming command sets.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from stratforge.explore.store import DEFAULT_RUN_DIR

CONFIRM_SEED_START = 100_000
HOLDOUT_SEED_START = 900_000_000
REFERENCE_FEE_BPS = 50.0  #: the fixed reference strategy: the challenge's starter
RESUME_OVERRIDES = ("max_runtime_s", "target_edge", "max_iterations", "budget_usd", "workers", "executor")

__all__ = [
    "CONFIRM_SEED_START",
    "HOLDOUT_SEED_START",
    "REFERENCE_FEE_BPS",
    "OFFLINE_PROPOSERS",
    "ExploreConfig",
]

#: the offline proposers a run can use when no LLM is configured
OFFLINE_PROPOSERS = ("cmaes", "templates")


@dataclass
class ExploreConfig:
    state_dir: Path = DEFAULT_RUN_DIR
    max_runtime_s: float = 10 * 3600
    target_edge: float = 527.0
    max_iterations: int | None = None
    budget_usd: float | None = None
    #: simulations per racing rung; the last is the whole selection set
    stages: tuple[int, ...] = (10, 100, 1000)
    confidence: float = 0.95
    keep_fraction: float = 0.5  #: successive halving: share of a generation kept at each rung
    #: the last rung checks the champion gate every this many seeds (0: only at its end)
    final_look_sims: int = 100
    rescore_sims: int = 1000  #: confirmation seeds for a would-be champion
    holdout_sims: int = 2000
    #: False: only the champion a run ends with is scored on the holdout seeds. Scoring every
    #: champion decides nothing and cost ~2,000 s of a 2-hour run (16 promotions x ~123 s).
    holdout_every_champion: bool = False
    spec_check_sims: int = 4  #: seeds on which a candidate's fast spec must match its compiled source
    template_threshold: float = 390.0
    generation_size: int = 4  #: candidates per generation of the template-library proposer
    #: offline proposer: "cmaes" (CMA-ES on the frontier family) or "templates" (the template library)
    proposer: str = "cmaes"
    seed: int = 0
    workers: int | None = None
    executor: str = "local"
    llm: dict[str, Any] | None = None  #: an LLMConfig as a dict; None = the offline proposer
    hypotheses_file: Path | None = None

    @property
    def n_selection(self) -> int:
        return max(self.stages)

    def confirm_seeds(self) -> list[int]:
        return list(range(CONFIRM_SEED_START, CONFIRM_SEED_START + self.rescore_sims))

    def holdout_seeds(self) -> list[int]:
        return list(range(HOLDOUT_SEED_START, HOLDOUT_SEED_START + self.holdout_sims))

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["state_dir"] = str(self.state_dir)
        d["hypotheses_file"] = None if self.hypotheses_file is None else str(self.hypotheses_file)
        d["stages"] = list(self.stages)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ExploreConfig:
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}  # older runs: extra keys
        d["state_dir"] = Path(d["state_dir"])
        d["stages"] = tuple(d["stages"])
        d.setdefault("proposer", "templates")  # runs from before CMA-ES searched the template library
        d.setdefault("final_look_sims", 0)  # runs from before the last rung stopped early
        if d.get("hypotheses_file"):
            d["hypotheses_file"] = Path(d["hypotheses_file"])
        return cls(**d)

    def resumed_with(self, stored: dict[str, Any]) -> ExploreConfig:
        """The stored run's settings with this command's exit conditions and compute settings."""
        if not stored:
            return self
        base = ExploreConfig.from_json(stored)
        for name in RESUME_OVERRIDES:
            setattr(base, name, getattr(self, name))
        return base

    def validate(self) -> None:
        if not self.stages or any(s < 1 for s in self.stages) or list(self.stages) != sorted(self.stages):
            raise ValueError("stages must be increasing positive simulation counts, e.g. 10,100,1000")
        if not 0.5 < self.confidence < 1.0:
            raise ValueError("confidence must be between 0.5 and 1")
        if not 0.0 < self.keep_fraction <= 1.0:
            raise ValueError("keep fraction must be in (0, 1]")
        if self.final_look_sims < 0:
            raise ValueError("final look sims must be 0 (off) or positive")
        if self.max_runtime_s <= 0:
            raise ValueError("max runtime must be positive")
        if self.max_iterations is not None and self.max_iterations < 1:
            raise ValueError("max iterations must be at least 1")
        if self.generation_size < 1:
            raise ValueError("generation size must be at least 1")
        if self.rescore_sims < 2 or self.holdout_sims < 2 or self.spec_check_sims < 1:
            raise ValueError("confirmation and holdout need at least 2 simulations, the spec check 1")
        if self.spec_check_sims > self.n_selection:
            raise ValueError("the spec check cannot use more seeds than the selection set")
        if self.proposer not in OFFLINE_PROPOSERS:
            raise ValueError(f"proposer must be one of {', '.join(OFFLINE_PROPOSERS)}")
        if self.executor not in ("local", "ray"):
            raise ValueError("executor must be 'local' or 'ray'")
