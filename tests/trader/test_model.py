"""The MLX actor-critic reproduces the published Phase 5 model and round-trips its file format."""

from __future__ import annotations

import shutil
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
from phase5_data import PHASE5_DATA, needs_phase5

from stratforge.trader.model import (
    FEEDFORWARD,
    PHASE5,
    RewardStats,
    detect_kind,
    init_feedforward,
    init_phase5,
    load_feedforward,
    load_numpy_params,
    load_phase5,
    load_policy,
    numpy_forward,
)

DATA = PHASE5_DATA
needs_data = needs_phase5


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    with np.load(DATA / "golden_inference.npz") as z:
        return {k: z[k] for k in z.files}


def _random_inputs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (
        rng.uniform(-1, 1, (n, 18)).astype(np.float32),
        rng.uniform(-1, 1, (n, 90)).astype(np.float32),
    )


def _file_layout(path: Path) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in mx.load(str(path)).items()}


@needs_data
def test_phase5_reproduces_golden_outputs(golden: dict[str, np.ndarray]) -> None:
    policy = load_phase5(DATA)
    assert policy.kind == PHASE5
    probs = policy.action_probs(golden["features"], golden["history"])
    values = policy.value(golden["features"], golden["history"])
    assert probs.shape == (256, 3) and values.shape == (256,)
    np.testing.assert_allclose(probs, golden["action_probs"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(values, golden["value"], atol=1e-5, rtol=0)
    # evaluate() is the same computation in one call
    p2, v2 = policy.evaluate(golden["features"], golden["history"])
    np.testing.assert_allclose(p2, probs, atol=1e-7)
    np.testing.assert_allclose(v2, values, atol=1e-7)


@needs_data
def test_numpy_forward_matches_golden_and_mlx(golden: dict[str, np.ndarray]) -> None:
    params = load_numpy_params(DATA)
    probs, values = numpy_forward(params, golden["features"], golden["history"])
    np.testing.assert_allclose(probs, golden["action_probs"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(values, golden["value"], atol=1e-5, rtol=0)
    # Off the golden set too: inputs outside the observation range stress LayerNorm/tanh saturation.
    f, h = _random_inputs(64, 3)
    f *= 3
    policy = load_phase5(DATA / "rl_model.safetensors")
    np.testing.assert_allclose(numpy_forward(params, f, h)[0], policy.action_probs(f, h), atol=1e-5)
    np.testing.assert_allclose(numpy_forward(params, f, h)[1], policy.value(f, h), atol=1e-4)


@needs_data
def test_history_matters_for_phase5_only(golden: dict[str, np.ndarray]) -> None:
    f, h = golden["features"][:8], golden["history"][:8]
    p5 = load_phase5(DATA)
    assert not np.allclose(p5.action_probs(f, h), p5.action_probs(f, np.zeros_like(h)))
    ff = load_feedforward(DATA / "pre-phase5")
    np.testing.assert_array_equal(ff.action_probs(f, h), ff.action_probs(f, np.zeros_like(h)))
    np.testing.assert_array_equal(ff.action_probs(f, h), ff.action_probs(f))
    # [n, 5, 18] history is the same as [n, 90] (oldest first, row-major)
    np.testing.assert_array_equal(p5.value(f, h.reshape(8, 5, 18)), p5.value(f, h))


@needs_data
def test_phase5_save_reload_round_trip(tmp_path: Path, golden: dict[str, np.ndarray]) -> None:
    policy = load_phase5(DATA)
    policy.save(tmp_path / "m")
    assert _file_layout(tmp_path / "m" / "rl_model.safetensors") == _file_layout(
        DATA / "rl_model.safetensors"
    )
    again = load_policy(tmp_path / "m")
    assert again.kind == PHASE5
    f, h = golden["features"], golden["history"]
    np.testing.assert_array_equal(again.action_probs(f, h), policy.action_probs(f, h))
    np.testing.assert_array_equal(again.value(f, h), policy.value(f, h))
    for k, v in load_numpy_params(DATA).items():
        np.testing.assert_array_equal(again.numpy_params()[k], v)
    # Stats npz: same keys and values as the published one.
    with np.load(DATA / "rl_model_stats.npz") as orig, np.load(tmp_path / "m" / "rl_model_stats.npz") as ours:
        assert set(orig.files) == set(ours.files)
        for k in orig.files:
            assert ours[k].dtype.kind == orig[k].dtype.kind, k
            np.testing.assert_allclose(ours[k], orig[k], rtol=1e-12)
    assert again.reward_stats.count == 24325
    assert again.reward_stats.std == pytest.approx(31.597165124685738)


@needs_data
def test_save_to_file_path_uses_reference_stats_name(tmp_path: Path) -> None:
    policy = load_phase5(DATA)
    policy.save(tmp_path / "ckpt" / "rl_model.safetensors")
    assert (tmp_path / "ckpt" / "rl_model_stats.npz").exists()
    policy.save(tmp_path / "best.safetensors")
    assert (tmp_path / "best_stats.npz").exists()
    assert load_phase5(tmp_path / "best.safetensors").reward_stats.count == policy.reward_stats.count


@needs_data
def test_feedforward_loads_and_round_trips(tmp_path: Path) -> None:
    assert detect_kind(DATA / "pre-phase5") == FEEDFORWARD
    assert detect_kind(DATA) == PHASE5
    ff = load_policy(DATA / "pre-phase5")
    assert ff.kind == FEEDFORWARD
    assert ff.reward_stats.count == 23740
    f, h = _random_inputs(32, 1)
    probs, values = ff.evaluate(f, h)
    np_probs, np_values = numpy_forward(ff.numpy_params(), f, h)
    np.testing.assert_allclose(probs, np_probs, atol=1e-5)
    np.testing.assert_allclose(values, np_values, atol=1e-4)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    ff.save(tmp_path / "ff")
    assert _file_layout(tmp_path / "ff" / "rl_model.safetensors") == _file_layout(
        DATA / "pre-phase5" / "rl_model.safetensors"
    )
    np.testing.assert_array_equal(load_feedforward(tmp_path / "ff").action_probs(f), ff.action_probs(f))


@needs_data
def test_loaders_refuse_the_other_architecture_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="feedforward"):
        load_phase5(DATA / "pre-phase5")
    with pytest.raises(ValueError, match="phase5"):
        load_feedforward(DATA)
    with pytest.raises(FileNotFoundError):
        load_policy(tmp_path)
    # Weights without a stats file still load (fresh reward stats).
    shutil.copy(DATA / "rl_model.safetensors", tmp_path / "rl_model.safetensors")
    assert load_policy(tmp_path).reward_stats.count == 0
    # A directory with a single, differently named model: that file and its <stem>_stats.npz.
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(DATA / "rl_model.safetensors", other / "rl_model_prob_pnl.safetensors")
    shutil.copy(DATA / "rl_model_stats.npz", other / "rl_model_prob_pnl_stats.npz")
    assert load_policy(other).reward_stats.count == 24325
    shutil.copy(DATA / "rl_model.safetensors", other / "second.safetensors")
    with pytest.raises(FileNotFoundError):
        load_policy(other)  # ambiguous


def test_shape_errors_are_clear() -> None:
    policy = init_phase5(0)
    f, h = _random_inputs(4, 0)
    with pytest.raises(ValueError, match="features"):
        policy.action_probs(f[:, :17], h)
    with pytest.raises(ValueError, match="history"):
        policy.action_probs(f, h[:, :80])
    with pytest.raises(ValueError, match="rows"):
        policy.value(f, h[:3])
    assert policy.action_probs(f[0], h[0]).shape == (1, 3)  # single observation


def test_fresh_models_are_seeded_and_both_kinds_share_the_interface(tmp_path: Path) -> None:
    f, h = _random_inputs(16, 2)
    a, b, c = init_phase5(7), init_phase5(7), init_phase5(8)
    np.testing.assert_array_equal(a.action_probs(f, h), b.action_probs(f, h))
    assert not np.allclose(a.action_probs(f, h), c.action_probs(f, h))
    for policy in (a, init_feedforward(1)):
        probs, values = policy.evaluate(f, h)
        assert probs.shape == (16, 3) and values.shape == (16,)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
        np.testing.assert_allclose(numpy_forward(policy.numpy_params(), f, h)[0], probs, atol=1e-5)
        policy.save(tmp_path / policy.kind)
        np.testing.assert_array_equal(load_policy(tmp_path / policy.kind).value(f, h), values)


def test_reward_stats_welford_and_resume_from_saved() -> None:
    rng = np.random.default_rng(5)
    first, second = rng.normal(0.3, 4.0, 500), rng.normal(-1.0, 2.0, 300)
    stats = RewardStats()
    stats.update(first)
    assert stats.mean == pytest.approx(first.mean())
    assert stats.std == pytest.approx(first.std())  # population std, as the reference stores
    # Only mean/std/count are saved: resuming from them must continue the same running statistics.
    resumed = RewardStats.from_saved(stats.mean, stats.std, stats.count)
    resumed.update(second)
    both = np.concatenate([first, second])
    assert resumed.count == 800
    assert resumed.mean == pytest.approx(both.mean())
    assert resumed.std == pytest.approx(both.std())


def test_reward_scaling_keeps_zeros_zero_and_does_not_centre() -> None:
    stats = RewardStats()
    rewards = np.array([0.0, 0.0, 5.0, 0.0, -3.0, 0.0, 0.0, 10.0])
    stats.update(rewards)
    assert stats.mean > 0  # a z-score would shift the zero rewards negative here
    scaled = stats.scale(rewards)
    assert np.all(scaled[rewards == 0] == 0.0)
    np.testing.assert_allclose(scaled, rewards / rewards.std())
    # Before two samples there is no std: identity scaling.
    np.testing.assert_array_equal(RewardStats().scale(np.array([2.0, 0.0])), [2.0, 0.0])
