"""`--executor ray`: run_batch on a local Ray instance gives the same results as the local pool."""

from __future__ import annotations

import numpy as np
import pytest

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():  # type: ignore[no-untyped-def]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


def test_ray_executor_matches_the_local_pool(local_ray: None) -> None:
    from stratforge.amm.engine import run_batch
    from stratforge.amm.ray_executor import RayExecutor
    from stratforge.amm.strategy import FixedFee

    seeds = list(range(30, 42))
    remote = run_batch(FixedFee(47), len(seeds), seeds=seeds, workers=3, executor=RayExecutor())
    local = run_batch(FixedFee(47), len(seeds), seeds=seeds, workers=1)
    np.testing.assert_array_equal(remote.seeds, local.seeds)
    for name, column in local.columns.items():
        np.testing.assert_array_equal(remote.columns[name], column, err_msg=name)
