"""Which ``exp`` each part of the market uses, and why one last bit matters.

The reference's Rust engine takes ``exp`` from two places: code on concrete ``f64`` (the GBM step,
the ziggurat) calls the platform's C math library, as the compiled core does (Python's ``math.exp``
is that same C function); rand_distr's generic distributions (log-normal retail sizes, Poisson's
e^-lambda) go through num-traits to Rust's ``libm`` crate, which the core reproduces as
``libm_crate_exp``. These tests pin both, and show the mechanism that turns a last-bit difference
into different scores for dynamic strategies but not for fixed fees.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from stratforge.amm import _core
from stratforge.amm.engine import MarketParams, draw_config, simulate
from stratforge.amm.reference import libm_crate_exp
from stratforge.amm.strategy import BPS, FixedFee

SHORT = MarketParams(n_steps=3_000)


def test_price_path_is_the_reference_step_with_the_platform_exp() -> None:
    cfg = draw_config(4)  # all 10,000 steps: glibc's exp is off by an ulp on a few of them
    history = simulate(cfg, FixedFee(30), history=True).history
    assert history is not None
    m = cfg.market
    drift = (m.gbm_mu - 0.5 * cfg.gbm_sigma * cfg.gbm_sigma) * m.gbm_dt
    vol = cfg.gbm_sigma * math.sqrt(m.gbm_dt)
    p, expected = m.initial_price, []
    for z in _core.draw("normal", cfg.seed, m.n_steps):  # the price stream is seeded with the seed
        p *= math.exp(drift + vol * z)
        expected.append(p)
    assert history[:, 0].tolist() == expected  # bit for bit


def test_the_cores_libm_crate_exp_is_its_python_transcription_on_every_branch() -> None:
    rng = np.random.default_rng(7)
    xs = rng.uniform(-1.0, 1.0, 100_000) * 10.0 ** rng.uniform(-10.0, 2.86, 100_000)
    specials = [0.0, -0.0, 1e-300, 0.3465, 0.3466, 1.0397, 1.0398, -1.0398, 708.4, 709.78, -708.4, -745.1]
    for x in [*xs.tolist(), *specials]:
        assert _core.libm_crate_exp(x) == libm_crate_exp(x), x
    assert math.isnan(_core.libm_crate_exp(math.nan))
    assert _core.libm_crate_exp(-746.0) == 0.0 and _core.libm_crate_exp(710.0) == math.inf
    # an exp within one ulp of the platform's, and a different function: ~3% of results differ
    moderate = xs[np.abs(xs) < 700]
    ulps = [abs(libm_crate_exp(x) - math.exp(x)) / math.ulp(math.exp(x)) for x in moderate.tolist()]
    assert max(ulps) <= 1.0
    assert 0.005 < np.mean(np.array(ulps) > 0) < 0.2


def test_retail_sizes_and_arrivals_use_the_libm_crate_exp() -> None:
    # the core's log-normal draw, against the crate's exp and against the platform's
    z = _core.draw("normal", 3, 5_000)
    sizes = _core.draw("lognormal", 3, 5_000, 0.9)
    assert sizes == [libm_crate_exp(0.9 * v) for v in z]
    assert sizes != [math.exp(0.9 * v) for v in z]
    # whole simulations: test_engine's core-equals-specification test (same two sites in both)


class LastWeiFee:
    """A fee that depends on the lowest digits of the WAD trade amount it is told about."""

    name = "last-wei"

    def create(self) -> LastWeiFee:
        return self

    def after_initialize(self, initial_x: int, initial_y: int) -> tuple[int, int]:
        return 30 * BPS, 30 * BPS

    def after_swap(
        self, is_buy: bool, amount_x: int, amount_y: int, timestamp: int, reserve_x: int, reserve_y: int
    ) -> tuple[int, int]:
        fee = (25 + amount_y % 11) * BPS
        return fee, fee


def _edge_and_fees(strategy: FixedFee | LastWeiFee, sigma_ulps: int) -> tuple[float, np.ndarray]:
    cfg = draw_config(2, SHORT)
    sigma = cfg.gbm_sigma
    for _ in range(sigma_ulps):
        sigma = math.nextafter(sigma, 1.0)
    result = simulate(dataclasses.replace(cfg, gbm_sigma=sigma), strategy, history=True)
    assert result.history is not None
    return result.submission.edge, result.history[:, 3]


def test_a_last_bit_price_change_moves_a_dynamic_strategy_but_not_a_fixed_fee() -> None:
    # One ulp more volatility changes the last bits of every price step, as a different libm
    # does on some steps. Trade amounts move by ~1e-16 relative: a fixed fee's edge stays equal
    # to ~1e-12, but the WAD integers a strategy sees change in their low digits.
    fixed, _ = _edge_and_fees(FixedFee(30), 0)
    fixed_moved, _ = _edge_and_fees(FixedFee(30), 1)
    assert fixed != fixed_moved and math.isclose(fixed, fixed_moved, rel_tol=1e-12)

    dynamic, fees = _edge_and_fees(LastWeiFee(), 0)
    dynamic_moved, fees_moved = _edge_and_fees(LastWeiFee(), 1)
    assert np.count_nonzero(fees != fees_moved) > len(fees) // 2
    assert not math.isclose(dynamic, dynamic_moved, rel_tol=1e-6)
    # deterministic on one platform: the same inputs give the same bits
    assert _edge_and_fees(LastWeiFee(), 1)[0] == dynamic_moved
