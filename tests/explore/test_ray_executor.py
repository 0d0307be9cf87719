"""`--executor ray`: evaluations on a local Ray instance give the same results as the local pool."""

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
    from stratforge.amm.strategy import FixedFee
    from stratforge.explore.loop import LocalExecutor, RayExecutor

    seeds = list(range(30, 42))
    remote = RayExecutor(chunk=5).run(FixedFee(47), seeds)
    local = LocalExecutor(workers=1).run(FixedFee(47), seeds)
    np.testing.assert_array_equal(remote.seeds, local.seeds)
    for name, column in local.columns.items():
        np.testing.assert_array_equal(remote.columns[name], column, err_msg=name)
