"""Training of the RL trader (PPO on the training environment), model loading and the equity plot.
Evaluation and backtests run the trading engine: see `stratforge.trader.evaluation`.

Seeds: training episode k of run seed s uses synthetic session seed ``s * 100_000 + k`` (s < 100);
evaluation uses seeds from ``EVAL_SEED_BASE`` (10,000,000) upwards, which training never touches, so
evaluation is always on held-out sessions.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stratforge.trader.baselines import BASELINES, ModelPolicy, TraderPolicy, make_baseline
from stratforge.trader.broker import BrokerConfig
from stratforge.trader.env import EnvConfig, Observation, Tape, TraderEnv
from stratforge.trader.markets.synthetic import DEFAULT_LAG_S, SyntheticConfig

EVAL_SEED_BASE = 10_000_000
#: The published Phase 5 weights (a directory holding rl_model.safetensors) are found through this
#: setting, or `stratforge trader --phase5-dir DIR`; there is no built-in path.
PHASE5_ENV = "STRATFORGE_PHASE5_DIR"


def phase5_dir() -> Path:
    """The Phase 5 weights directory from ``STRATFORGE_PHASE5_DIR``; a one-line error when unusable."""
    raw = os.environ.get(PHASE5_ENV, "").strip()
    if not raw:
        raise FileNotFoundError(
            f"'phase5' needs the published weights: set {PHASE5_ENV} or pass --phase5-dir "
            "(a directory holding rl_model.safetensors)"
        )
    path = Path(raw).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"Phase 5 weights not found: {path} (from {PHASE5_ENV} / --phase5-dir)")
    return path


def train_seed(run_seed: int, episode: int) -> int:
    return run_seed * 100_000 + episode


@dataclass
class TrainConfig:
    episodes: int = 200
    seed: int = 0
    init: str = "scratch"  # "scratch", "phase5" (published weights) or a model directory
    tick_s: float = 5.0
    trade_usd: float = 10.0
    latency_s: float = 0.5
    # 0.99, not Phase 5's 0.95: with 5 s ticks a settlement is up to 180 steps away, and 0.95 discounts
    # it to nothing (measured: 63% vs 37% of the oracle's PnL after 200 episodes, same seeds).
    gamma: float = 0.99
    gae_lambda: float = 0.95
    lr_actor: float = 1e-4
    lr_critic: float = 3e-4
    entropy_coef: float = 0.03
    buffer_size: int = 512
    minibatch_size: int = 128
    n_epochs: int = 4
    lag_s: tuple[float, float] = DEFAULT_LAG_S  # synthetic book lag range (honest: 0-2 s)
    imbalance_lean: float = 0.0  # synthetic stale-side thinning (> 0: the old market's tell)
    sizing: str = "confidence"  # entry sizing (see `sizing`): "confidence" or "fixed"
    checkpoint_every: int = 20  # updates between checkpoints
    n_envs: int = 4  # episodes run in lockstep (batched policy calls)

    def env_config(self) -> EnvConfig:
        return EnvConfig(
            tick_s=self.tick_s,
            broker=BrokerConfig(trade_usd=self.trade_usd, latency_s=self.latency_s),
            synthetic=SyntheticConfig(lag_s=self.lag_s, imbalance_lean=self.imbalance_lean),
            sizing=self.sizing,
        )


def _load_init(init: str, seed: int) -> Any:
    from stratforge.trader.model import init_phase5, load_phase5, load_policy

    if init == "scratch":
        return init_phase5(seed)
    if init == "phase5":
        return load_phase5(phase5_dir())
    path = Path(init)
    if not path.exists():
        raise FileNotFoundError(f"model not found: {init}")
    return load_policy(path)


def train(
    cfg: TrainConfig,
    out_dir: str | Path,
    progress: Callable[[int, dict[str, Any]], None] | None = None,
    tape: Tape | None = None,
) -> dict[str, Any]:
    """Train a PPO agent on synthetic sessions (or, with `tape`, on repeated passes over one recorded
    session: the training part of a walk-forward split); writes out_dir/{model/, checkpoints/,
    updates.csv, train_config.json, train_summary.json}. `progress(episode, stats)` is called after
    each episode."""
    from stratforge.trader.ppo import PPOAgent, PPOConfig, UpdateLog

    if not 0 <= cfg.seed < 100:
        raise ValueError("seed must be in [0, 100) so training seeds never reach the evaluation seeds")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2))
    ppo_cfg = PPOConfig(
        lr_actor=cfg.lr_actor,
        lr_critic=cfg.lr_critic,
        gamma=cfg.gamma,
        gae_lambda=cfg.gae_lambda,
        entropy_coef=cfg.entropy_coef,
        buffer_size=cfg.buffer_size,
        minibatch_size=cfg.minibatch_size,
        n_epochs=cfg.n_epochs,
    )
    agent = PPOAgent(_load_init(cfg.init, cfg.seed), ppo_cfg, seed=cfg.seed)
    log = UpdateLog(out / "updates.csv")
    cum_pnl, cum_trades, cum_wins = 0.0, 0, 0
    episode_pnls: list[float] = [0.0] * cfg.episodes
    t0 = time.time()
    n_updates = 0
    n_done = 0
    # Several episodes run in lockstep so one policy call serves all their markets (MLX call overhead
    # dominates small batches). Each env is its own episode; market ids are unique across sessions.
    envs = [TraderEnv(cfg.env_config(), tape=tape) for _ in range(max(1, min(cfg.n_envs, cfg.episodes)))]
    running: list[tuple[TraderEnv, Observation, int]] = []
    next_ep = 0
    for env in envs:
        obs, _ = env.reset(seed=train_seed(cfg.seed, next_ep))
        running.append((env, obs, next_ep))
        next_ep += 1
    while running:
        parts = [(np.flatnonzero(obs.mask), obs) for _, obs, _ in running]
        feats = np.concatenate([o.features[idx] for idx, o in parts])
        hist = np.concatenate([o.history[idx] for idx, o in parts])
        # Trajectory ids are per episode and market: envs replaying one tape see the same markets.
        ids = [
            f"{ep}:{env.current[i].condition_id}"  # type: ignore[union-attr]
            for (env, _, ep), (idx, _) in zip(running, parts, strict=True)
            for i in idx
        ]
        if len(ids):
            a, logp, v = agent.act(feats, hist)
        rewards_all, dones_all = [], []
        still: list[tuple[TraderEnv, Observation, int]] = []
        off = 0
        for (env, _, ep), (idx, _) in zip(running, parts, strict=True):
            actions = np.zeros(env.n, dtype=np.int64)
            actions[idx] = a[off : off + len(idx)] if len(idx) else 0
            off += len(idx)
            nxt, rewards, done, _, info = env.step(actions)
            rewards_all.append(rewards[idx])
            dones_all.append(info["market_end"][idx] | done)
            if not done:
                still.append((env, nxt, ep))
                continue
            rep = env.broker.report()
            cum_pnl += rep["pnl"]
            cum_trades += rep["n_trades"]
            cum_wins += round(rep["win_rate"] * rep["n_trades"])
            episode_pnls[ep] = rep["pnl"]
            n_done += 1
            if progress is not None:
                progress(n_done - 1, {"pnl": rep["pnl"], "trades": rep["n_trades"], "updates": n_updates})
            if next_ep < cfg.episodes:
                obs, _ = env.reset(seed=train_seed(cfg.seed, next_ep))
                still.append((env, obs, next_ep))
                next_ep += 1
        if len(ids):
            agent.record(ids, feats, hist, a, logp, v, np.concatenate(rewards_all), np.concatenate(dones_all))
        running = still
        while agent.ready():
            stats = agent.update()
            n_updates += 1
            log.write(
                stats,
                cumulative_pnl=cum_pnl,
                cumulative_trades=cum_trades,
                cumulative_win_rate=cum_wins / cum_trades if cum_trades else 0.0,
            )
            if cfg.checkpoint_every and n_updates % cfg.checkpoint_every == 0:
                agent.save(out / "checkpoints" / f"update_{n_updates:05d}")
    agent.save(out / "model")
    summary = {
        "episodes": cfg.episodes,
        "updates": n_updates,
        "seconds": time.time() - t0,
        "episode_pnl": episode_pnls,
        "cumulative_pnl": cum_pnl,
        "cumulative_trades": cum_trades,
        "model_dir": str(out / "model"),
    }
    (out / "train_summary.json").write_text(json.dumps(summary, indent=2))
    return summary


# ------------------------------------------------------------------------------------------------
# Policies for evaluation
# ------------------------------------------------------------------------------------------------


def load_trader_policy(spec: str) -> TraderPolicy:
    """A baseline name, "phase5" (the published weights) or a model directory / safetensors file."""
    if spec in BASELINES:
        return make_baseline(spec)
    from stratforge.trader.model import load_phase5, load_policy

    if spec == "phase5":
        return ModelPolicy(load_phase5(phase5_dir()), name="phase5")
    path = Path(spec.removeprefix("model:"))
    if not path.exists():
        raise FileNotFoundError(f"no baseline or model named {spec!r}")
    return ModelPolicy(load_policy(path), name="model")


def plot_equity(res: Any, path: str | Path, agent: str = "model") -> Path:
    """Cumulative PnL over the evaluation episodes, agent vs baselines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, pnls in res.pnl.items():
        ax.plot(np.cumsum(pnls), label=name, linewidth=2.2 if name == agent else 1.2)
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_xlabel("held-out episode")
    ax.set_ylabel("cumulative PnL after fees (USDC)")
    ax.set_title("Synthetic 15-min markets: agent vs baselines")
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
