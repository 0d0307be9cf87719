"""PPO: per-trajectory GAE, aligned transitions, zero-preserving reward scaling, KL stop, learning."""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
from phase5_data import PHASE5_DATA

from stratforge.trader.model import init_feedforward, init_phase5, load_numpy_params, numpy_forward
from stratforge.trader.ppo import (
    UPDATE_LOG_COLUMNS,
    PPOAgent,
    PPOConfig,
    UpdateLog,
    compute_gae,
    read_update_log,
)

DATA = PHASE5_DATA


def _obs(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    f = rng.uniform(-1, 1, (n, 18)).astype(np.float32)
    return f, rng.uniform(-1, 1, (n, 90)).astype(np.float32)


# -- GAE ------------------------------------------------------------------------------------------


def test_gae_hand_computed() -> None:
    r, v = [1.0, 0.0, 2.0], [0.5, 0.2, 0.1]
    # gamma 0.9, lambda 0.8 -> gamma*lambda = 0.72
    # open end, V(s_3)=0.4: d2 = 2 + .9*.4 - .1 = 2.26; d1 = .9*.1 - .2 = -.11; d0 = 1 + .9*.2 - .5 = .68
    adv, ret = compute_gae(r, v, 0.4, False, 0.9, 0.8)
    np.testing.assert_allclose(adv, [0.68 + 0.72 * (-0.11 + 0.72 * 2.26), -0.11 + 0.72 * 2.26, 2.26])
    np.testing.assert_allclose(ret, adv + np.array(v))
    # terminal end: the bootstrap value is ignored, d2 = 2 - .1 = 1.9
    adv_t, _ = compute_gae(r, v, 123.0, True, 0.9, 0.8)
    np.testing.assert_allclose(adv_t, [0.68 + 0.72 * (-0.11 + 0.72 * 1.9), -0.11 + 0.72 * 1.9, 1.9])
    # lambda = 1, gamma = 1 on a terminal segment: advantage = reward-to-go minus value
    adv1, ret1 = compute_gae(r, v, 0.0, True, 1.0, 1.0)
    np.testing.assert_allclose(ret1, [3.0, 2.0, 2.0])
    np.testing.assert_allclose(adv1, np.array([3.0, 2.0, 2.0]) - v)


def test_gae_is_per_trajectory_with_interleaved_markets() -> None:
    cfg = PPOConfig(gamma=0.9, gae_lambda=0.8, scale_rewards=False)
    agent = PPOAgent(init_phase5(0), cfg, seed=0)
    rng = np.random.default_rng(0)
    # Market "a" runs 3 ticks and ends (terminal); market "b" runs 4 ticks and stays open.
    r_a, v_a = [1.0, 0.0, 2.0], [0.5, 0.2, 0.1]
    r_b, v_b = [0.0, -1.0, 0.0, 3.0], [0.3, -0.4, 0.6, 0.9]
    for t in range(4):
        ids, rw, vl, dn = ["b"], [r_b[t]], [v_b[t]], [False]
        if t < 3:
            ids, rw, vl, dn = ["a", "b"], [r_a[t], r_b[t]], [v_a[t], v_b[t]], [t == 2, False]
        f, h = _obs(rng, len(ids))
        agent.record(ids, f, h, np.zeros(len(ids)), np.full(len(ids), -1.1), vl, rw, dn)
    # a: 3 complete (terminal); b: 3 complete, its 4th is the open tail that bootstraps the 3rd.
    assert agent.buffer.n_complete() == 6 and len(agent.buffer) == 7
    batch = agent.prepare_batch()
    ids = batch["traj_ids"]
    adv_a, _ = compute_gae(r_a, v_a, 0.0, True, 0.9, 0.8)
    adv_b, ret_b = compute_gae(r_b[:3], v_b[:3], v_b[3], False, 0.9, 0.8)
    np.testing.assert_allclose(batch["advantages"][ids == "a"], adv_a, rtol=1e-6)
    np.testing.assert_allclose(batch["advantages"][ids == "b"], adv_b, rtol=1e-6)
    np.testing.assert_allclose(batch["returns"][ids == "b"], ret_b, rtol=1e-6)
    # The interleaved (reference) order would have mixed the markets: make sure that differs.
    mixed, _ = compute_gae([1, 0, 0, -1, 2, 0], [0.5, 0.3, 0.2, -0.4, 0.1, 0.6], 0.9, False, 0.9, 0.8)
    assert not np.allclose(np.sort(mixed), np.sort(batch["advantages"]))


def test_open_tail_carries_over_and_ready_counts_complete_transitions() -> None:
    agent = PPOAgent(init_feedforward(0), PPOConfig(buffer_size=4, minibatch_size=2, n_epochs=1), seed=0)
    rng = np.random.default_rng(1)
    for t in range(4):
        f, h = _obs(rng, 1)
        a, lp, v = agent.act(f, h)
        agent.record(["m"], f, h, a, lp, v, [0.0], [False])
        assert agent.ready() == (t >= 4)  # 4 recorded, only 3 complete
    f, h = _obs(rng, 1)
    a, lp, v = agent.act(f, h)
    agent.record(["m"], f, h, a, lp, v, [1.0], [False])
    assert agent.ready()
    stats = agent.update()
    assert stats.n_samples == 4 and stats.n_trajectories == 1
    assert len(agent.buffer) == 1 and agent.buffer.n_complete() == 0  # the 5th tick waits for its successor
    np.testing.assert_array_equal(agent.buffer.open["m"][0].features, f[0])
    # truncate: ends the market, bootstrapping from the critic's value of the last observation
    f2, h2 = _obs(rng, 1)
    agent.truncate(["m"], f2, h2)
    seg = agent.buffer.segments()
    assert len(seg) == 1 and not seg[0].terminal
    assert seg[0].bootstrap_value == pytest.approx(float(agent.policy.value(f2, h2)[0]))
    agent.drop(["m"])
    assert agent.buffer.n_complete() == 1  # drop only affects open trajectories


def test_transitions_stay_aligned_with_their_own_tick() -> None:
    """Each stored row pairs a state with the action, log-prob, value and reward of that same tick."""
    agent = PPOAgent(init_phase5(3), PPOConfig(scale_rewards=False), seed=3)
    rng = np.random.default_rng(3)
    markets = ["x", "y", "z"]
    for t in range(6):
        f, h = _obs(rng, 3)
        f[:, 0] = np.array([t, t + 10, t + 20]) / 100.0  # identifies (market, tick)
        a, lp, v = agent.act(f, h)
        reward = f[:, 0] * 1000 + a  # a function of the same tick's state and action
        agent.record(markets, f, h, a, lp, v, reward, [t == 5] * 3)
    batch = agent.prepare_batch()
    assert len(batch["actions"]) == 18
    np.testing.assert_allclose(batch["rewards"], batch["features"][:, 0] * 1000 + batch["actions"], rtol=1e-5)
    probs, values = agent.policy.evaluate(batch["features"], batch["history"])
    np.testing.assert_allclose(batch["logp"], np.log(probs[np.arange(18), batch["actions"]]), atol=1e-5)
    np.testing.assert_allclose(batch["values"], values, atol=1e-5)
    # Within each market the rows are in tick order.
    for m in markets:
        ticks = batch["features"][batch["traj_ids"] == m][:, 0]
        assert np.all(np.diff(ticks) > 0)


def test_reward_scaling_keeps_zero_rewards_zero() -> None:
    agent = PPOAgent(init_phase5(0), PPOConfig(), seed=0)
    rng = np.random.default_rng(4)
    raw = np.where(rng.random(40) < 0.2, rng.normal(5.0, 20.0, 40), 0.0)  # sparse, mean far from 0
    for t, r in enumerate(raw):
        f, h = _obs(rng, 1)
        a, lp, v = agent.act(f, h)
        agent.record(["m"], f, h, a, lp, v, [r], [t == len(raw) - 1])
    batch = agent.prepare_batch()
    scaled = batch["scaled_rewards"]
    assert np.all(scaled[raw == 0] == 0.0)
    np.testing.assert_allclose(scaled, raw / raw.std(), rtol=1e-9)
    assert agent.policy.reward_stats.count == 40


def test_record_rejects_inconsistent_rows() -> None:
    agent = PPOAgent(init_phase5(0), seed=0)
    f, h = _obs(np.random.default_rng(0), 2)
    with pytest.raises(ValueError, match="twice"):
        agent.record(["a", "a"], f, h, [0, 1], [0, 0], [0, 0], [0, 0], [False, False])
    with pytest.raises(ValueError, match="one row"):
        agent.record(["a", "b"], f, h, [0], [0, 0], [0, 0], [0, 0], [False, False])


def test_act_samples_from_the_policy_and_greedy_takes_the_argmax() -> None:
    agent = PPOAgent(init_phase5(2), seed=2)
    f, h = _obs(np.random.default_rng(2), 1)
    f, h = np.repeat(f, 6000, axis=0), np.repeat(h, 6000, axis=0)
    probs = agent.policy.action_probs(f[:1], h[:1])[0]
    actions, logp, _ = agent.act(f, h)
    freq = np.bincount(actions, minlength=3) / len(actions)
    np.testing.assert_allclose(freq, probs, atol=0.03)
    np.testing.assert_allclose(logp, np.log(probs[actions]), atol=1e-5)
    greedy, _, _ = agent.act(f[:5], h[:5], greedy=True)
    assert np.all(greedy == probs.argmax())


# -- KL early stop ----------------------------------------------------------------------------------


def _fill(agent: PPOAgent, rng: np.random.Generator, n_markets: int = 8) -> None:
    t = 0
    while not agent.ready():
        f, h = _obs(rng, n_markets)
        a, lp, v = agent.act(f, h)
        r = (a == 1).astype(float) * 2.0 - (a == 2).astype(float)
        agent.record(range(n_markets), f, h, a, lp, v, r, [t % 4 == 3] * n_markets)
        t += 1


def test_kl_early_stop_uses_the_sb3_rule() -> None:
    cfg = PPOConfig(lr_actor=3e-2, target_kl=0.005)
    agent = PPOAgent(init_phase5(0), cfg, seed=0)
    _fill(agent, np.random.default_rng(5))
    stats = agent.update()
    assert stats.early_stopped
    assert stats.n_steps < 40 and stats.epochs < cfg.n_epochs
    assert stats.approx_kl <= cfg.kl_stop_factor * cfg.target_kl  # only steps under the limit were applied
    # Without a target every minibatch of every epoch runs.
    free = PPOAgent(init_phase5(0), PPOConfig(lr_actor=3e-2, target_kl=None, n_epochs=2), seed=0)
    _fill(free, np.random.default_rng(5))
    s2 = free.update()
    assert not s2.early_stopped and s2.n_steps == 2 * 4 and s2.epochs == pytest.approx(2.0)


# -- checkpoints and logs ---------------------------------------------------------------------------


def test_checkpoint_round_trip_in_published_format(tmp_path: Path) -> None:
    agent = PPOAgent(None, PPOConfig(n_epochs=2), seed=1)
    _fill(agent, np.random.default_rng(6))
    agent.update()
    agent.save(tmp_path / "ckpt")
    resumed = PPOAgent.load(tmp_path / "ckpt", PPOConfig(), seed=1)
    f, h = _obs(np.random.default_rng(7), 10)
    np.testing.assert_array_equal(resumed.policy.action_probs(f, h), agent.policy.action_probs(f, h))
    assert resumed.n_updates == 1
    assert resumed.policy.reward_stats.count == agent.policy.reward_stats.count
    assert resumed.policy.reward_stats.std == pytest.approx(agent.policy.reward_stats.std)
    # Same keys and shapes as a fresh Phase 5 file (and the published one when present).
    keys = {k: v.shape for k, v in mx.load(str(tmp_path / "ckpt" / "rl_model.safetensors")).items()}
    assert keys == {k: v.shape for k, v in init_phase5(0).numpy_params().items()}
    if (DATA / "rl_model.safetensors").exists():
        assert keys == {k: v.shape for k, v in load_numpy_params(DATA).items()}
    # The NumPy forward pass reads the checkpoint as well.
    probs, _ = numpy_forward(load_numpy_params(tmp_path / "ckpt"), f, h)
    np.testing.assert_allclose(probs, agent.policy.action_probs(f, h), atol=1e-5)


def test_update_log_has_reference_columns(tmp_path: Path) -> None:
    ref = sorted(DATA.glob("updates_*.csv"))
    if ref:
        header = ref[0].read_text().splitlines()[0].split(",")
        assert tuple(header) == UPDATE_LOG_COLUMNS
        assert len(read_update_log(ref[0])) > 10
    agent = PPOAgent(None, PPOConfig(n_epochs=1), seed=0)
    log = UpdateLog(tmp_path / "logs" / "updates.csv")
    for _ in range(2):
        _fill(agent, np.random.default_rng(8))
        stats = agent.update()
        log.write(stats, cumulative_pnl=12.5, cumulative_trades=3, cumulative_win_rate=1 / 3)
    rows = read_update_log(tmp_path / "logs" / "updates.csv")
    assert [r["update_num"] for r in rows] == [1.0, 2.0]
    assert tuple(rows[0].keys()) == UPDATE_LOG_COLUMNS
    assert rows[1]["policy_loss"] == pytest.approx(stats.policy_loss)
    assert rows[1]["cumulative_trades"] == 3.0
    assert 0.0 <= rows[1]["buffer_win_rate"] <= 1.0


# -- learning ---------------------------------------------------------------------------------------


def _optimal(x: np.ndarray) -> np.ndarray:
    """BUY when feature 0 is high, SELL when low, HOLD in between (each about a third of the time)."""
    return np.where(x > 0.33, 1, np.where(x < -0.33, 2, 0))


def _episodic_task(lag: int, updates: int, seed: int) -> tuple[float, float, list[float]]:
    """Short episodes (3 ticks per market, 8 markets interleaved and staggered). Reward 1 when the
    action is optimal for feature 0 of the observation ``lag`` ticks back (0 = now; a lag > 0 is only
    visible through the history window), else 0. Default hyperparameters. Returns the mean probability
    of the optimal action on held-out states before and after training, and the return per update."""
    rng = np.random.default_rng(seed)
    agent = PPOAgent(None, PPOConfig(), seed=seed)
    n, horizon = 8, 3
    tick = np.arange(n) % horizon
    ids = list(range(n))
    next_id = n
    window = np.zeros((n, 5, 18), dtype=np.float32)

    # Held-out states shaped like tick ``lag + 1`` of a market: zero-padded history ending with now.
    eval_window = np.zeros((1000, 5, 18), dtype=np.float32)
    eval_window[:, 4 - lag :] = np.random.default_rng(99).uniform(-1, 1, (1000, lag + 1, 18))
    f_eval, h_eval = eval_window[:, -1], eval_window.reshape(1000, 90)
    target = _optimal(eval_window[:, 4 - lag, 0])

    def p_optimal() -> float:
        return float(agent.policy.action_probs(f_eval, h_eval)[np.arange(1000), target].mean())

    before = p_optimal()
    returns: list[float] = []
    for _ in range(updates):
        rewards = []
        while not agent.ready():
            f = rng.uniform(-1, 1, (n, 18)).astype(np.float32)
            window = np.concatenate([window[:, 1:], f[:, None]], axis=1)  # oldest first, ends with now
            a, lp, v = agent.act(f, window.reshape(n, 90))
            r = (a == _optimal(window[:, 4 - lag, 0])).astype(float)
            tick += 1
            done = tick >= horizon
            agent.record(ids, f, window.reshape(n, 90), a, lp, v, r, done)
            rewards.append(r.mean())
            for i in np.flatnonzero(done):
                ids[i], next_id, tick[i] = next_id, next_id + 1, 0
                window[i] = 0.0
        returns.append(float(np.mean(rewards)))
        agent.update()
    return before, p_optimal(), returns


def test_ppo_learns_the_optimal_action_per_context() -> None:
    """Seeded, default hyperparameters, 25 updates; chance is 1/3."""
    before, after, returns = _episodic_task(lag=0, updates=25, seed=11)
    assert before < 0.45
    assert after > 0.65, (before, after)  # about twice chance
    assert np.mean(returns[-3:]) > 0.6 and np.mean(returns[-3:]) > returns[0] + 0.2, returns


@pytest.mark.slow
def test_ppo_learns_from_the_history_window() -> None:
    """The optimal action depends on the previous tick, seen only through the temporal encoder's
    window: learning it needs history and transitions aligned tick by tick."""
    before, after, returns = _episodic_task(lag=1, updates=60, seed=5)
    assert before < 0.45
    assert after > 0.7, (before, after)
    assert np.mean(returns[-3:]) > returns[0] + 0.3, returns


def test_compiled_inference_sees_weight_updates() -> None:
    """The compiled forward pass declares the weights as inputs: after a PPO update (in-place weight
    change) it must agree with eager MLX and differ from the outputs before the update."""
    agent = PPOAgent(
        init_phase5(4), PPOConfig(lr_actor=1e-2, lr_critic=1e-2, target_kl=None, n_epochs=1), seed=4
    )
    f, h = _obs(np.random.default_rng(10), 6)
    before = agent.policy.evaluate(f, h)
    _fill(agent, np.random.default_rng(11))
    agent.update()
    after = agent.policy.evaluate(f, h)
    agent.policy.use_compile = False
    eager = agent.policy.evaluate(f, h)
    assert not np.allclose(before[0], after[0], atol=1e-4)
    np.testing.assert_allclose(after[0], eager[0], atol=1e-6)
    np.testing.assert_allclose(after[1], eager[1], atol=1e-5)
