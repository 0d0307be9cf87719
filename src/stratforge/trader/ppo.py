"""PPO for the RL trader (MLX), written for clarity in the style of cleanrl.

Agent API (stable; the trading environment and ``stratforge trader train`` call it)::

    from stratforge.trader.model import load_policy
    from stratforge.trader.ppo import PPOAgent, PPOConfig, UpdateLog

    agent = PPOAgent(policy_or_None, PPOConfig(), seed=0)    # None = fresh Phase 5 network
    log = UpdateLog("runs/x/updates.csv")                     # optional CSV, reference columns
    while training:
        feats, hist = env.observe()                           # [n,18], [n,90] for n live markets
        actions, logp, values = agent.act(feats, hist)        # sample (greedy=True for eval)
        rewards, dones = env.step(actions)                    # reward of THIS action, done after it
        agent.record(market_ids, feats, hist, actions, logp, values, rewards, dones)
        if agent.ready():
            stats = agent.update()
            log.write(stats, cumulative_pnl=..., cumulative_trades=..., cumulative_win_rate=...)
    agent.save("runs/x/model")                                # rl_model.safetensors + rl_model_stats.npz

Design (and the reference's defects it fixes):

* **Aligned transitions.** One ``record`` row is one tick of one market: the state and history the
  action was chosen from, that action, its log-prob and value, the reward it earned and whether the
  market ended after it. Nothing is shifted by a tick.
* **Per-trajectory GAE.** The buffer keeps a list per trajectory id (market). GAE runs on each list
  separately, never across interleaved markets. A transition is *complete* once the next transition of
  its market is recorded (that supplies ``V(s_{t+1})``) or its ``done`` flag is set (terminal: the
  bootstrap is 0). ``ready()`` is true when at least ``buffer_size`` transitions are complete; the
  last, still-open transition of each market stays in the buffer for the next update.
  ``truncate(ids, feats, hist)`` ends markets that stop without a terminal step (data ran out),
  bootstrapping from the critic's value of the final observation; ``drop(ids)`` discards them (a
  market that vanishes without either stays open in the buffer). ``update()`` uses every complete
  transition, which can exceed ``buffer_size`` when many markets end on the same tick.
* **Reward scaling.** Raw rewards update a running (Welford) std; the update divides rewards by it
  and does NOT subtract the mean, so the many zero-reward ticks stay exactly zero. The stats live in
  ``policy.reward_stats`` and are saved in the stats npz (``reward_mean/std/count``).
* **Losses.** Clipped surrogate with per-minibatch advantage normalisation, entropy bonus on the actor;
  0.5*MSE value loss on the critic (no value clipping by default: it tends to hurt, see Andrychowicz et
  al. 2021). Actor and critic have separate Adam optimisers (lr 1e-4 / 3e-4) and separate global
  grad-norm clipping (0.5), so no value-loss coefficient is needed.
* **KL early stop.** The rule of Stable-Baselines3: before each minibatch step, the approx KL
  (``mean((r - 1) - log r)``, Schulman's low-variance estimator) of that minibatch under the current
  weights is measured; if it exceeds ``kl_stop_factor * target_kl`` (1.5 * 0.02) the step is skipped
  and the update stops (remaining minibatches and epochs).
"""

from __future__ import annotations

import csv
import time
from collections.abc import Hashable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np

from stratforge.trader.model import (
    HISTORY_DIM,
    N_FEATURES,
    PHASE5,
    Policy,
    as_batch,
    init_phase5,
    load_policy,
)

UPDATE_LOG_COLUMNS = (
    "timestamp",
    "update_num",
    "policy_loss",
    "value_loss",
    "entropy",
    "approx_kl",
    "clip_fraction",
    "explained_variance",
    "buffer_avg_reward",
    "buffer_win_rate",
    "cumulative_pnl",
    "cumulative_trades",
    "cumulative_win_rate",
)


@dataclass
class PPOConfig:
    """Hyperparameters; defaults are the seed's Phase 5 values."""

    lr_actor: float = 1e-4
    lr_critic: float = 3e-4
    gamma: float = 0.95
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    entropy_coef: float = 0.03
    max_grad_norm: float = 0.5
    buffer_size: int = 256
    minibatch_size: int = 64
    n_epochs: int = 10
    target_kl: float | None = 0.02  # None disables the early stop
    kl_stop_factor: float = 1.5
    normalize_advantages: bool = True
    clip_value_loss: bool = False
    scale_rewards: bool = True


@dataclass
class UpdateStats:
    """What one ``PPOAgent.update`` did. Loss-like numbers are means over the minibatch steps taken."""

    update_num: int
    policy_loss: float
    value_loss: float
    entropy: float
    approx_kl: float
    clip_fraction: float
    explained_variance: float
    buffer_avg_reward: float  # mean raw reward of the transitions used
    buffer_win_rate: float  # fraction of those rewards > 0
    n_samples: int
    n_trajectories: int
    n_steps: int  # minibatch gradient steps applied
    epochs: float  # epochs completed (fractional when stopped early)
    early_stopped: bool
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------------------------------
# GAE and the rollout buffer
# --------------------------------------------------------------------------------------------------


def compute_gae(
    rewards: np.ndarray,
    values: np.ndarray,
    bootstrap_value: float,
    terminal: bool,
    gamma: float,
    lam: float,
) -> tuple[np.ndarray, np.ndarray]:
    """GAE over ONE trajectory segment (consecutive ticks of one market).

    ``bootstrap_value`` is ``V(s_T)`` of the state after the last transition; it is ignored when the
    segment ends in a terminal state. Returns ``(advantages, returns)`` with returns = adv + values.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    n = len(rewards)
    adv = np.zeros(n, dtype=np.float64)
    next_value = 0.0 if terminal else float(bootstrap_value)
    last = 0.0
    for t in range(n - 1, -1, -1):
        delta = rewards[t] + gamma * next_value - values[t]
        last = delta + gamma * lam * last
        adv[t] = last
        next_value = values[t]
    return adv, adv + values


@dataclass
class Transition:
    """One tick of one market: everything refers to the same state ``s_t``."""

    features: np.ndarray  # [18]
    history: np.ndarray  # [90], oldest first
    action: int
    logp: float
    value: float
    reward: float  # raw reward earned by ``action``
    done: bool  # market ended after this step (terminal)


@dataclass
class Segment:
    """Consecutive transitions of one trajectory ready for GAE."""

    traj_id: Hashable
    transitions: list[Transition]
    bootstrap_value: float
    terminal: bool


@dataclass
class RolloutBuffer:
    """Transitions grouped by trajectory id (see the module docstring for completeness rules)."""

    open: dict[Hashable, list[Transition]] = field(default_factory=dict)
    closed: list[Segment] = field(default_factory=list)

    def add(self, traj_id: Hashable, tr: Transition) -> None:
        seq = self.open.setdefault(traj_id, [])
        seq.append(tr)
        if tr.done:
            self.closed.append(Segment(traj_id, seq, 0.0, True))
            del self.open[traj_id]

    def truncate(self, traj_id: Hashable, bootstrap_value: float) -> None:
        """End ``traj_id`` without a terminal state, bootstrapping from ``bootstrap_value``."""
        seq = self.open.pop(traj_id, None)
        if seq:
            self.closed.append(Segment(traj_id, seq, float(bootstrap_value), False))

    def drop(self, traj_id: Hashable) -> None:
        """Forget the open transitions of ``traj_id``."""
        self.open.pop(traj_id, None)

    def n_complete(self) -> int:
        return sum(len(s.transitions) for s in self.closed) + sum(len(q) - 1 for q in self.open.values())

    def __len__(self) -> int:
        return sum(len(s.transitions) for s in self.closed) + sum(len(q) for q in self.open.values())

    def segments(self) -> list[Segment]:
        """Closed segments, plus each open trajectory minus its last transition, bootstrapped with
        that last transition's value (it is exactly ``V(s_{t+1})`` of the previous one)."""
        out = list(self.closed)
        for tid, seq in self.open.items():
            if len(seq) > 1:
                out.append(Segment(tid, seq[:-1], seq[-1].value, False))
        return out

    def consume(self) -> None:
        """Drop everything ``segments`` returned; keep the open tail of each trajectory."""
        self.closed = []
        self.open = {tid: seq[-1:] for tid, seq in self.open.items()}


# --------------------------------------------------------------------------------------------------
# The agent
# --------------------------------------------------------------------------------------------------


def _log_softmax(logits: mx.array) -> mx.array:
    return logits - mx.logsumexp(logits, axis=-1, keepdims=True)


class PPOAgent:
    """PPO learner around a :class:`~stratforge.trader.model.Policy` (Phase 5 or feed-forward)."""

    def __init__(self, policy: Policy | None = None, config: PPOConfig | None = None, seed: int = 0):
        self.config = config or PPOConfig()
        self.policy = policy if policy is not None else init_phase5(seed)
        self.rng = np.random.default_rng(seed)
        self.buffer = RolloutBuffer()
        self.n_updates = int(np.asarray(self.policy.extra_stats.get("ppo_updates", 0)))
        self.actor_opt = optim.Adam(learning_rate=self.config.lr_actor)
        self.critic_opt = optim.Adam(learning_rate=self.config.lr_critic)
        # One backward pass for both networks: they share no parameters, so the gradient of the summed
        # loss w.r.t. each network is exactly the gradient of its own loss.
        self._loss_and_grad = nn.value_and_grad(self.policy.net, self._loss)

    # -- acting -------------------------------------------------------------------------------------
    def act(
        self, features: Any, history: Any, greedy: bool = False
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Choose actions for a batch of markets: ``(actions int64 [n], logp float32 [n], values [n])``.

        Samples from the policy (or takes the argmax when ``greedy``); ``logp`` is the log-probability
        of the returned action under the current policy.
        """
        _, logp_np, values = self.policy.forward(features, history)
        n = len(logp_np)
        if greedy:
            actions = logp_np.argmax(axis=1)
        else:
            cdf = np.cumsum(np.exp(logp_np.astype(np.float64)), axis=1)
            u = self.rng.random(n) * cdf[:, -1]
            actions = (u[:, None] >= cdf[:, :-1]).sum(axis=1)
        actions = actions.astype(np.int64)
        return actions, logp_np[np.arange(n), actions].astype(np.float32), values

    # -- recording ----------------------------------------------------------------------------------
    def record(
        self,
        traj_ids: Iterable[Hashable],
        features: Any,
        history: Any,
        actions: Any,
        logp: Any,
        values: Any,
        rewards: Any,
        dones: Any,
    ) -> None:
        """Store one tick for each listed market (row i of every argument belongs to ``traj_ids[i]``).

        ``rewards[i]`` is the raw reward earned by ``actions[i]`` taken in ``features[i]``; ``dones[i]``
        says the market ended after it. Updates the running reward std.
        """
        ids = list(traj_ids)
        f, h = as_batch(features, history)
        cols = [np.asarray(x).reshape(-1) for x in (actions, logp, values, rewards, dones)]
        if any(len(c) != len(ids) for c in cols) or len(f) != len(ids):
            raise ValueError("record: every argument needs one row per trajectory id")
        if len(set(ids)) != len(ids):
            raise ValueError("record: a trajectory id appears twice in one tick")
        a, lp, v, r, d = cols
        self.policy.reward_stats.update(r)
        for i, tid in enumerate(ids):
            self.buffer.add(
                tid,
                Transition(
                    f[i].copy(), h[i].copy(), int(a[i]), float(lp[i]), float(v[i]), float(r[i]), bool(d[i])
                ),
            )

    def truncate(self, traj_ids: Iterable[Hashable], features: Any, history: Any) -> None:
        """End markets that stopped without a terminal step; bootstrap from V(final observation)."""
        ids = list(traj_ids)
        values = self.policy.value(features, history)
        for tid, v in zip(ids, values, strict=True):
            self.buffer.truncate(tid, float(v))

    def drop(self, traj_ids: Iterable[Hashable]) -> None:
        """Discard the open transitions of these markets."""
        for tid in traj_ids:
            self.buffer.drop(tid)

    def ready(self) -> bool:
        return self.buffer.n_complete() >= self.config.buffer_size

    # -- losses -------------------------------------------------------------------------------------
    def _actor_loss(
        self, f: mx.array, h: mx.array, a: mx.array, old_logp: mx.array, adv: mx.array
    ) -> tuple[mx.array, tuple[mx.array, mx.array, mx.array, mx.array]]:
        c = self.config
        logp_all = _log_softmax(self.policy.actor(f, h))
        new_logp = mx.take_along_axis(logp_all, a[:, None], axis=1)[:, 0]
        entropy = -mx.sum(mx.exp(logp_all) * logp_all, axis=1).mean()
        log_ratio = new_logp - old_logp
        ratio = mx.exp(log_ratio)
        pg_loss = mx.maximum(-adv * ratio, -adv * mx.clip(ratio, 1 - c.clip_eps, 1 + c.clip_eps)).mean()
        approx_kl = ((ratio - 1) - log_ratio).mean()
        clip_frac = (mx.abs(ratio - 1) > c.clip_eps).astype(mx.float32).mean()
        return pg_loss - c.entropy_coef * entropy, (pg_loss, entropy, approx_kl, clip_frac)

    def _critic_loss(
        self, f: mx.array, h: mx.array, ret: mx.array, old_v: mx.array
    ) -> tuple[mx.array, mx.array]:
        v = self.policy.critic(f, h)[:, 0]
        loss = (v - ret) ** 2
        if self.config.clip_value_loss:
            eps = self.config.clip_eps
            v_clipped = old_v + mx.clip(v - old_v, -eps, eps)
            loss = mx.maximum(loss, (v_clipped - ret) ** 2)
        loss = 0.5 * loss.mean()
        return loss, loss

    def _loss(
        self,
        f: mx.array,
        h: mx.array,
        a: mx.array,
        old_logp: mx.array,
        adv: mx.array,
        ret: mx.array,
        old_v: mx.array,
    ) -> tuple[mx.array, tuple[mx.array, ...]]:
        actor_loss, (pg, ent, kl, clip) = self._actor_loss(f, h, a, old_logp, adv)
        value_loss, _ = self._critic_loss(f, h, ret, old_v)
        return actor_loss + value_loss, (pg, value_loss, ent, kl, clip)

    # -- the update -----------------------------------------------------------------------------------
    def prepare_batch(self) -> dict[str, np.ndarray]:
        """Flatten the complete transitions and compute per-trajectory GAE on scaled rewards."""
        c = self.config
        segs = self.buffer.segments()
        feats, hists, acts, logps, vals, raw, scl, advs, rets, tids = [], [], [], [], [], [], [], [], [], []
        for s in segs:
            trs = s.transitions
            r = np.array([t.reward for t in trs])
            v = np.array([t.value for t in trs])
            scaled = self.policy.reward_stats.scale(r) if c.scale_rewards else r
            adv, ret = compute_gae(scaled, v, s.bootstrap_value, s.terminal, c.gamma, c.gae_lambda)
            feats.append(np.stack([t.features for t in trs]))
            hists.append(np.stack([t.history for t in trs]))
            acts.append(np.array([t.action for t in trs]))
            logps.append(np.array([t.logp for t in trs]))
            vals.append(v)
            raw.append(r)
            scl.append(scaled)
            advs.append(adv)
            rets.append(ret)
            tids.extend([s.traj_id] * len(trs))
        if not segs:
            return {}
        return {
            "features": np.concatenate(feats).astype(np.float32).reshape(-1, N_FEATURES),
            "history": np.concatenate(hists).astype(np.float32).reshape(-1, HISTORY_DIM),
            "actions": np.concatenate(acts).astype(np.int32),
            "logp": np.concatenate(logps).astype(np.float32),
            "values": np.concatenate(vals).astype(np.float32),
            "rewards": np.concatenate(raw),
            "scaled_rewards": np.concatenate(scl),
            "advantages": np.concatenate(advs).astype(np.float32),
            "returns": np.concatenate(rets).astype(np.float32),
            "traj_ids": np.array(tids, dtype=object),
            "n_trajectories": np.array(len(segs)),
        }

    def update(self) -> UpdateStats:
        """Run PPO epochs over every complete transition, then clear them from the buffer."""
        c = self.config
        t0 = time.perf_counter()
        batch = self.prepare_batch()
        if not batch:
            raise RuntimeError("update: the buffer holds no complete transition")
        self.buffer.consume()
        n = len(batch["actions"])
        f, h = mx.array(batch["features"]), mx.array(batch["history"])
        a, old_logp = mx.array(batch["actions"]), mx.array(batch["logp"])
        adv_all, ret, old_v = (
            mx.array(batch["advantages"]),
            mx.array(batch["returns"]),
            mx.array(batch["values"]),
        )
        actor, critic = self.policy.actor, self.policy.critic
        kl_limit = None if c.target_kl is None else c.kl_stop_factor * c.target_kl

        metrics: dict[str, list[float]] = {k: [] for k in ("pg", "v", "ent", "kl", "clip")}
        steps, early = 0, False
        mb_per_epoch = max(1, -(-n // c.minibatch_size))
        for _epoch in range(c.n_epochs):
            perm = self.rng.permutation(n)
            for start in range(0, n, c.minibatch_size):
                idx = mx.array(perm[start : start + c.minibatch_size].astype(np.int32))
                mf, mh, ma, mlp = f[idx], h[idx], a[idx], old_logp[idx]
                madv = adv_all[idx]
                if c.normalize_advantages and len(perm[start : start + c.minibatch_size]) > 1:
                    madv = (madv - madv.mean()) / (mx.sqrt(madv.var()) + 1e-8)
                (_, aux), grads = self._loss_and_grad(mf, mh, ma, mlp, madv, ret[idx], old_v[idx])
                mx.eval(aux, grads)
                pg, v_loss, ent, kl, clip = (float(x.item()) for x in aux)
                if kl_limit is not None and kl > kl_limit:
                    early = True  # SB3 rule: skip this step and stop the update
                    break
                a_grads, _ = optim.clip_grad_norm(grads["actor"], c.max_grad_norm)
                c_grads, _ = optim.clip_grad_norm(grads["critic"], c.max_grad_norm)
                self.actor_opt.update(actor, a_grads)
                self.critic_opt.update(critic, c_grads)
                mx.eval(actor.parameters(), critic.parameters(), self.actor_opt.state, self.critic_opt.state)
                for key, val in zip(
                    ("pg", "v", "ent", "kl", "clip"), (pg, v_loss, ent, kl, clip), strict=True
                ):
                    metrics[key].append(val)
                steps += 1
            if early:
                break

        y, v_pred = batch["returns"].astype(np.float64), batch["values"].astype(np.float64)
        var_y = float(np.var(y))
        explained = float("nan") if var_y == 0 else 1.0 - float(np.var(y - v_pred)) / var_y
        rewards = batch["rewards"]
        self.n_updates += 1

        def mean(k: str) -> float:
            return float(np.mean(metrics[k])) if metrics[k] else float("nan")

        return UpdateStats(
            update_num=self.n_updates,
            policy_loss=mean("pg"),
            value_loss=mean("v"),
            entropy=mean("ent"),
            approx_kl=mean("kl"),
            clip_fraction=mean("clip"),
            explained_variance=explained,
            buffer_avg_reward=float(rewards.mean()),
            buffer_win_rate=float((rewards > 0).mean()),
            n_samples=n,
            n_trajectories=int(batch["n_trajectories"]),
            n_steps=steps,
            epochs=steps / mb_per_epoch,
            early_stopped=early,
            seconds=time.perf_counter() - t0,
        )

    # -- checkpoints ----------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Weights in the published safetensors layout + stats npz (no optimiser state)."""
        extra: dict[str, Any] = {"ppo_updates": np.int64(self.n_updates)}
        if self.policy.kind == PHASE5:
            extra.update(gamma=np.float64(self.config.gamma), buffer_size=np.int64(self.config.buffer_size))
        return self.policy.save(path, extra_stats=extra)

    @classmethod
    def load(cls, path: str | Path, config: PPOConfig | None = None, seed: int = 0) -> PPOAgent:
        """Resume from a checkpoint (fresh optimisers; reward stats and update count restored)."""
        return cls(load_policy(path), config, seed)


# --------------------------------------------------------------------------------------------------
# CSV update log (same columns as the reference's updates_*.csv)
# --------------------------------------------------------------------------------------------------


class UpdateLog:
    """Appends one row per update to a CSV with the reference's ``updates_*.csv`` columns."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists() or self.path.stat().st_size == 0:
            with self.path.open("w", newline="") as fh:
                csv.writer(fh).writerow(UPDATE_LOG_COLUMNS)

    def write(
        self,
        stats: UpdateStats,
        cumulative_pnl: float = 0.0,
        cumulative_trades: int = 0,
        cumulative_win_rate: float = 0.0,
        timestamp: datetime | None = None,
    ) -> dict[str, Any]:
        row = {
            "timestamp": (timestamp or datetime.now()).isoformat(),
            "update_num": stats.update_num,
            "policy_loss": stats.policy_loss,
            "value_loss": stats.value_loss,
            "entropy": stats.entropy,
            "approx_kl": stats.approx_kl,
            "clip_fraction": stats.clip_fraction,
            "explained_variance": stats.explained_variance,
            "buffer_avg_reward": stats.buffer_avg_reward,
            "buffer_win_rate": stats.buffer_win_rate,
            "cumulative_pnl": cumulative_pnl,
            "cumulative_trades": cumulative_trades,
            "cumulative_win_rate": cumulative_win_rate,
        }
        with self.path.open("a", newline="") as fh:
            csv.DictWriter(fh, fieldnames=UPDATE_LOG_COLUMNS).writerow(row)
        return row


def read_update_log(path: str | Path) -> list[dict[str, float]]:
    """Rows of an updates CSV (ours or the reference's) with numeric columns as floats."""
    with Path(path).open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [{k: (v if k == "timestamp" else float(v)) for k, v in r.items()} for r in rows]
