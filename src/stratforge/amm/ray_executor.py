"""Simulations as Ray tasks (``run_batch(..., executor=RayExecutor())``), on a local Ray instance or
the cluster at ``address`` / ``RAY_ADDRESS``. Results are identical to the local pool's."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from stratforge.amm.engine import MarketParams, run_chunk
from stratforge.amm.strategy import StrategySpec

__all__ = ["RayExecutor"]


class RayExecutor:
    def __init__(self, address: str | None = None) -> None:
        import ray

        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        self._ray = ray
        self._task = ray.remote(run_chunk)

    def map_chunks(
        self,
        chunks: Sequence[Sequence[int]],
        spec: StrategySpec,
        normalizer: StrategySpec,
        market: MarketParams,
    ) -> Iterator[tuple[int, tuple[np.ndarray, float]]]:
        refs = {self._task.remote(list(c), spec, normalizer, market): i for i, c in enumerate(chunks)}
        pending = list(refs)
        while pending:
            done, pending = self._ray.wait(pending, num_returns=1)
            for ref in done:
                yield refs[ref], self._ray.get(ref)
