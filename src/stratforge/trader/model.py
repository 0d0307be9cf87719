"""Actor-critic networks of the RL trader (MLX on CPU) and their published weight format.

Two architectures are supported, both stored as one safetensors file with ``actor.*`` and ``critic.*``
keys (MLX layout: a Linear weight is ``[out, in]``) plus an optional ``<stem>_stats.npz`` beside it:

* **Phase 5** (temporal, the current model). Actor and critic each own a ``TemporalEncoder``
  (Linear 90->64, LN, tanh, Linear 64->32, LN, tanh) over the last 5 observations (oldest first,
  zero-padded), concatenated with the current 18 features, then Linear(50->H) LN tanh,
  Linear(H->H) LN tanh, Linear(H->out). Actor H=64, 3 logits (HOLD, BUY, SELL); critic H=96, 1 value.
* **Feed-forward** (pre-Phase 5, the rollback target): 18->128->128->out with tanh, no LayerNorm.
  It ignores the history.

Public API (stable; the trading environment and the CLI call it)::

    policy = load_policy("path/to/dir")          # detects Phase 5 vs feed-forward
    policy = load_phase5(path)                    # dir with rl_model.safetensors (or one *.safetensors)
    policy = load_feedforward(path)
    policy = init_phase5(seed=0)                  # fresh random weights (training from scratch)
    probs = policy.action_probs(features, history)   # [n, 3] float32, rows sum to 1
    values = policy.value(features, history)          # [n] float32
    probs, values = policy.evaluate(features, history)
    policy.save("out_dir")                        # out_dir/rl_model.safetensors + rl_model_stats.npz
    params = policy.numpy_params()                # flat {key: ndarray} in the file's layout
    probs, values = numpy_forward(params, features, history)   # pure NumPy reference

``features`` is ``[n, 18]`` (or ``[18]``) and ``history`` is ``[n, 90]`` or ``[n, 5, 18]``, oldest
observation first; the history normally ends with the current observation, as in the reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import numpy as np

N_FEATURES = 18
HISTORY_LEN = 5
HISTORY_DIM = N_FEATURES * HISTORY_LEN
TEMPORAL_DIM = 32
N_ACTIONS = 3
ACTIONS = ("HOLD", "BUY", "SELL")
HOLD, BUY, SELL = 0, 1, 2
LN_EPS = 1e-5

WEIGHTS_NAME = "rl_model.safetensors"
STATS_NAME = "rl_model_stats.npz"

PHASE5 = "phase5"
FEEDFORWARD = "feedforward"


# --------------------------------------------------------------------------------------------------
# MLX modules. Attribute names are the published parameter names: do not rename them.
# --------------------------------------------------------------------------------------------------


class TemporalEncoder(nn.Module):
    """Compresses the stacked last ``history_len`` observations into ``output_dim`` features."""

    def __init__(self, input_dim: int = N_FEATURES, history_len: int = HISTORY_LEN, output_dim: int = 32):
        super().__init__()
        self.fc1 = nn.Linear(input_dim * history_len, 64)
        self.ln1 = nn.LayerNorm(64, eps=LN_EPS)
        self.fc2 = nn.Linear(64, output_dim)
        self.ln2 = nn.LayerNorm(output_dim, eps=LN_EPS)

    def __call__(self, history: mx.array) -> mx.array:
        h = mx.tanh(self.ln1(self.fc1(history)))
        return mx.tanh(self.ln2(self.fc2(h)))


class _TemporalHead(nn.Module):
    """Shared body of the Phase 5 actor and critic: own encoder + two LN/tanh layers + linear out."""

    def __init__(self, hidden: int, out: int, input_dim: int, history_len: int, temporal_dim: int):
        super().__init__()
        self.temporal_encoder = TemporalEncoder(input_dim, history_len, temporal_dim)
        self.fc1 = nn.Linear(input_dim + temporal_dim, hidden)
        self.ln1 = nn.LayerNorm(hidden, eps=LN_EPS)
        self.fc2 = nn.Linear(hidden, hidden)
        self.ln2 = nn.LayerNorm(hidden, eps=LN_EPS)
        self.fc3 = nn.Linear(hidden, out)

    def __call__(self, features: mx.array, history: mx.array) -> mx.array:
        x = mx.concatenate([features, self.temporal_encoder(history)], axis=-1)
        h = mx.tanh(self.ln1(self.fc1(x)))
        h = mx.tanh(self.ln2(self.fc2(h)))
        return self.fc3(h)


class Actor(_TemporalHead):
    """Phase 5 policy: ``__call__`` returns action logits [n, 3]; ``probs`` applies the softmax."""

    def __init__(
        self,
        input_dim: int = N_FEATURES,
        hidden_size: int = 64,
        output_dim: int = N_ACTIONS,
        history_len: int = HISTORY_LEN,
        temporal_dim: int = TEMPORAL_DIM,
    ):
        super().__init__(hidden_size, output_dim, input_dim, history_len, temporal_dim)

    def probs(self, features: mx.array, history: mx.array) -> mx.array:
        return mx.softmax(self(features, history), axis=-1)


class Critic(_TemporalHead):
    """Phase 5 value network: ``__call__`` returns values [n, 1]."""

    def __init__(
        self,
        input_dim: int = N_FEATURES,
        hidden_size: int = 96,
        history_len: int = HISTORY_LEN,
        temporal_dim: int = TEMPORAL_DIM,
    ):
        super().__init__(hidden_size, 1, input_dim, history_len, temporal_dim)


class _FFNet(nn.Module):
    """Pre-Phase 5 network: tanh MLP without LayerNorm; takes (and ignores) the history."""

    def __init__(self, input_dim: int, hidden: int, out: int):
        super().__init__()
        self.fc1 = nn.Linear(input_dim, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, out)

    def __call__(self, features: mx.array, history: mx.array | None = None) -> mx.array:
        h = mx.tanh(self.fc1(features))
        h = mx.tanh(self.fc2(h))
        return self.fc3(h)

    def probs(self, features: mx.array, history: mx.array | None = None) -> mx.array:
        return mx.softmax(self(features, history), axis=-1)


class FFActor(_FFNet):
    def __init__(self, input_dim: int = N_FEATURES, hidden_size: int = 128, output_dim: int = N_ACTIONS):
        super().__init__(input_dim, hidden_size, output_dim)


class FFCritic(_FFNet):
    def __init__(self, input_dim: int = N_FEATURES, hidden_size: int = 128):
        super().__init__(input_dim, hidden_size, 1)


class ActorCritic(nn.Module):
    """Container whose parameter tree is exactly the file's key layout (``actor.*``, ``critic.*``)."""

    def __init__(self, actor: nn.Module, critic: nn.Module):
        super().__init__()
        self.actor = actor
        self.critic = critic


# --------------------------------------------------------------------------------------------------
# Reward statistics (stored in the stats npz)
# --------------------------------------------------------------------------------------------------


@dataclass
class RewardStats:
    """Running mean/std of raw per-step rewards (Welford). ``std`` is the population std, as stored
    by the reference (``reward_std``); M2 is recovered as ``std**2 * count`` when loading."""

    mean: float = 0.0
    std: float = 1.0
    count: int = 0
    _m2: float = field(default=0.0, repr=False)

    @classmethod
    def from_saved(cls, mean: float, std: float, count: int) -> RewardStats:
        return cls(float(mean), float(std), int(count), float(std) ** 2 * int(count))

    def update(self, rewards: np.ndarray | float) -> None:
        """Welford update with every reward (zeros included: they are real per-step rewards)."""
        for r in np.atleast_1d(np.asarray(rewards, dtype=np.float64)):
            self.count += 1
            delta = r - self.mean
            self.mean += delta / self.count
            self._m2 += delta * (r - self.mean)
        if self.count >= 2:
            self.std = float(np.sqrt(self._m2 / self.count))

    def scale(self, rewards: np.ndarray) -> np.ndarray:
        """Divide by the running std WITHOUT subtracting the mean, so zero rewards stay exactly zero."""
        std = self.std if self.count >= 2 and self.std > 1e-8 else 1.0
        return np.asarray(rewards, dtype=np.float64) / std


# --------------------------------------------------------------------------------------------------
# Input handling
# --------------------------------------------------------------------------------------------------


def as_batch(features: Any, history: Any | None) -> tuple[np.ndarray, np.ndarray]:
    """Validate and reshape inputs to float32 ``[n, 18]`` and ``[n, 90]`` (zero history if None)."""
    f = np.asarray(features, dtype=np.float32)
    if f.ndim == 1:
        f = f[None, :]
    if f.ndim != 2 or f.shape[1] != N_FEATURES:
        raise ValueError(f"features must be [n, {N_FEATURES}], got shape {np.shape(features)}")
    if history is None:
        h = np.zeros((f.shape[0], HISTORY_DIM), dtype=np.float32)
    else:
        h = np.asarray(history, dtype=np.float32)
        if h.ndim == 1 or (h.ndim == 2 and h.shape == (HISTORY_LEN, N_FEATURES) and f.shape[0] == 1):
            h = h.reshape(1, -1)
        h = h.reshape(h.shape[0], -1) if h.ndim == 3 else h
        if h.ndim != 2 or h.shape[1] != HISTORY_DIM:
            raise ValueError(f"history must be [n, {HISTORY_DIM}] or [n, 5, 18], got {np.shape(history)}")
    if h.shape[0] != f.shape[0]:
        raise ValueError(f"features has {f.shape[0]} rows but history has {h.shape[0]}")
    return f, h


# --------------------------------------------------------------------------------------------------
# Policy: the object the rest of the trader uses
# --------------------------------------------------------------------------------------------------


class Policy:
    """An actor-critic pair plus its reward statistics and architecture numbers.

    ``actor(features, history)`` returns logits and ``critic(features, history)`` values [n, 1] for
    both kinds, so PPO trains either one unchanged.
    """

    def __init__(
        self,
        kind: str,
        actor: nn.Module,
        critic: nn.Module,
        reward_stats: RewardStats | None = None,
        extra_stats: dict[str, np.ndarray] | None = None,
    ):
        if kind not in (PHASE5, FEEDFORWARD):
            raise ValueError(f"unknown policy kind {kind!r}")
        self.kind = kind
        self.net = ActorCritic(actor, critic)
        self.reward_stats = reward_stats if reward_stats is not None else RewardStats()
        # Other entries of the stats npz (architecture numbers, gamma, ...) kept to save them back.
        self.extra_stats: dict[str, np.ndarray] = dict(extra_stats or {})
        self.use_compile = True
        self._compiled: Any = None
        mx.eval(self.net.parameters())

    @property
    def actor(self) -> nn.Module:
        return self.net.actor

    @property
    def critic(self) -> nn.Module:
        return self.net.critic

    # -- inference ------------------------------------------------------------------------------
    def _forward(self, f: mx.array, h: mx.array) -> tuple[mx.array, mx.array, mx.array]:
        logits = self.actor(f, h)
        logp = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
        return mx.softmax(logits, axis=-1), logp, self.critic(f, h)[:, 0]

    def forward(self, features: Any, history: Any | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(probs [n, 3], log_probs [n, 3], values [n])`` as NumPy, in one MLX evaluation.

        Runs a graph compiled by ``mx.compile`` with the weights as declared inputs, so in-place weight
        updates (PPO steps, ``load_weights``) are seen; compiling cuts per-decision overhead ~3x at
        batch 1. ``use_compile = False`` falls back to eager MLX.
        """
        f, h = as_batch(features, history)
        fx, hx = mx.array(f), mx.array(h)
        if self.use_compile:
            if self._compiled is None:
                self._compiled = mx.compile(self._forward, inputs=[self.net.state])
            out = self._compiled(fx, hx)
        else:
            out = self._forward(fx, hx)
        mx.eval(*out)
        probs, logp, values = (np.array(x) for x in out)
        return probs, logp, values

    def evaluate(self, features: Any, history: Any | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Action probabilities [n, 3] and values [n]."""
        probs, _, values = self.forward(features, history)
        return probs, values

    def action_probs(self, features: Any, history: Any | None = None) -> np.ndarray:
        """Action probabilities [n, 3] over (HOLD, BUY, SELL)."""
        return self.forward(features, history)[0]

    def value(self, features: Any, history: Any | None = None) -> np.ndarray:
        """Critic values [n]."""
        return self.forward(features, history)[2]

    # -- persistence ------------------------------------------------------------------------------
    def numpy_params(self) -> dict[str, np.ndarray]:
        """Flat ``{"actor.fc1.weight": array, ...}`` copy of the weights, in the file's layout."""
        from mlx.utils import tree_flatten

        return {k: np.array(v) for k, v in tree_flatten(self.net.parameters())}

    def stats_dict(self) -> dict[str, np.ndarray]:
        """The stats npz content: reward running stats, then architecture numbers."""
        out: dict[str, np.ndarray] = {
            "reward_mean": np.float64(self.reward_stats.mean),
            "reward_std": np.float64(self.reward_stats.std),
            "reward_count": np.int64(self.reward_stats.count),
        }
        out.update(self.extra_stats)
        return out

    def save(self, path: str | Path, extra_stats: dict[str, Any] | None = None) -> Path:
        """Write the weights (published safetensors layout) and the stats npz; return the weights path.

        ``path`` is a directory (gets ``rl_model.safetensors`` + ``rl_model_stats.npz``) or a
        ``.safetensors`` file (stats go to ``<stem>_stats.npz`` beside it, as the reference does).
        """
        weights, stats = _paths_for(Path(path), create=True)
        self.net.save_weights(str(weights))
        payload = self.stats_dict()
        for k, v in (extra_stats or {}).items():
            payload[k] = np.asarray(v)
        np.savez(stats, **payload)
        return weights


def _paths_for(path: Path, create: bool = False) -> tuple[Path, Path]:
    if path.suffix == ".safetensors":
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        return path, path.with_name(path.stem + "_stats.npz")
    if create:
        path.mkdir(parents=True, exist_ok=True)
    elif path.is_dir() and not (path / WEIGHTS_NAME).exists():
        # A directory holding one differently named model (e.g. rl_model_prob_pnl.safetensors).
        candidates = sorted(path.glob("*.safetensors"))
        if len(candidates) == 1:
            return _paths_for(candidates[0])
    return path / WEIGHTS_NAME, path / STATS_NAME


class ModelFileError(ValueError):
    """A model file that cannot be read (truncated, corrupt, wrong format): the message says which."""


def _read_stats(stats_path: Path) -> tuple[RewardStats | None, dict[str, np.ndarray]]:
    if not stats_path.exists():
        return None, {}
    try:
        with np.load(stats_path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except Exception as exc:  # zipfile/pickle/OS errors of a damaged .npz
        raise ModelFileError(
            f"{stats_path} is not a readable stats file ({type(exc).__name__}: {exc})"
        ) from None
    reward = None
    if {"reward_mean", "reward_std", "reward_count"} <= data.keys():
        reward = RewardStats.from_saved(
            float(data.pop("reward_mean")), float(data.pop("reward_std")), int(data.pop("reward_count"))
        )
    return reward, data


def _read_weights(path: Path) -> tuple[dict[str, mx.array], Path]:
    weights_path, stats_path = _paths_for(path)
    if not weights_path.exists():
        raise FileNotFoundError(f"no model weights at {weights_path}")
    try:
        return dict(mx.load(str(weights_path))), stats_path
    except Exception as exc:  # MLX raises RuntimeError on a truncated or corrupt safetensors file
        msg = " ".join(str(exc).split())
        raise ModelFileError(f"{weights_path} is not a readable safetensors file ({msg})") from None


def _kind_of(weights: dict[str, Any]) -> str:
    return PHASE5 if "actor.temporal_encoder.fc1.weight" in weights else FEEDFORWARD


def _build(kind: str, weights: dict[str, Any]) -> tuple[nn.Module, nn.Module]:
    """Modules sized from the weight shapes (Linear weight is [out, in])."""
    a_hidden = int(weights["actor.fc1.weight"].shape[0])
    c_hidden = int(weights["critic.fc1.weight"].shape[0])
    if kind == PHASE5:
        temporal = int(weights["actor.temporal_encoder.fc2.weight"].shape[0])
        hist_in = int(weights["actor.temporal_encoder.fc1.weight"].shape[1])
        n_in = int(weights["actor.fc1.weight"].shape[1]) - temporal
        return (
            Actor(n_in, a_hidden, N_ACTIONS, hist_in // n_in, temporal),
            Critic(n_in, c_hidden, hist_in // n_in, temporal),
        )
    n_in = int(weights["actor.fc1.weight"].shape[1])
    return FFActor(n_in, a_hidden, N_ACTIONS), FFCritic(n_in, c_hidden)


def _load(path: str | Path, expect: str | None) -> Policy:
    weights, stats_path = _read_weights(Path(path))
    kind = _kind_of(weights)
    if expect is not None and kind != expect:
        raise ValueError(f"{path} holds a {kind} model, not a {expect} model")
    try:
        actor, critic = _build(kind, weights)
        policy = Policy(kind, actor, critic)
        # strict: every key of the file must match a parameter of the same shape and vice versa.
        policy.net.load_weights(list(weights.items()), strict=True)
    except (KeyError, ValueError, IndexError) as exc:
        raise ModelFileError(
            f"{path} does not hold the trader's network ({type(exc).__name__}: {exc})"
        ) from None
    reward, extra = _read_stats(stats_path)
    if reward is not None:
        policy.reward_stats = reward
    policy.extra_stats = extra
    mx.eval(policy.net.parameters())
    return policy


def load_phase5(path: str | Path) -> Policy:
    """Load a Phase 5 (temporal) model from a directory holding ``rl_model.safetensors`` or the file."""
    return _load(path, PHASE5)


def load_feedforward(path: str | Path) -> Policy:
    """Load a pre-Phase 5 feed-forward model (same interface; history is ignored)."""
    return _load(path, FEEDFORWARD)


def load_policy(path: str | Path) -> Policy:
    """Load whichever model ``path`` holds, detected from the weight keys."""
    return _load(path, None)


def detect_kind(path: str | Path) -> str:
    """``"phase5"`` or ``"feedforward"`` for the model at ``path``."""
    weights, _ = _read_weights(Path(path))
    return _kind_of(weights)


def _phase5_arch_stats(gamma: float = 0.95, buffer_size: int = 256) -> dict[str, np.ndarray]:
    return {
        "input_dim": np.int64(N_FEATURES),
        "hidden_size": np.int64(64),
        "critic_hidden_size": np.int64(96),
        "history_len": np.int64(HISTORY_LEN),
        "temporal_dim": np.int64(TEMPORAL_DIM),
        "gamma": np.float64(gamma),
        "buffer_size": np.int64(buffer_size),
    }


def init_phase5(seed: int = 0) -> Policy:
    """A fresh Phase 5 policy with MLX's default initialisation, seeded."""
    mx.random.seed(seed)
    return Policy(PHASE5, Actor(), Critic(), RewardStats(), _phase5_arch_stats())


def init_feedforward(seed: int = 0, hidden: int = 128) -> Policy:
    """A fresh feed-forward policy (18 -> hidden -> hidden -> 3 / 1), seeded."""
    mx.random.seed(seed)
    return Policy(FEEDFORWARD, FFActor(N_FEATURES, hidden), FFCritic(N_FEATURES, hidden), RewardStats())


# --------------------------------------------------------------------------------------------------
# NumPy reference forward pass
# --------------------------------------------------------------------------------------------------


def _np_linear(p: dict[str, np.ndarray], name: str, x: np.ndarray) -> np.ndarray:
    return x @ p[name + ".weight"].T + p[name + ".bias"]


def _np_layer_norm(p: dict[str, np.ndarray], name: str, x: np.ndarray) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)  # biased variance, like MLX/PyTorch
    return (x - mean) / np.sqrt(var + LN_EPS) * p[name + ".weight"] + p[name + ".bias"]


def _np_head(p: dict[str, np.ndarray], prefix: str, f: np.ndarray, h: np.ndarray) -> np.ndarray:
    if prefix + ".temporal_encoder.fc1.weight" in p:
        te = prefix + ".temporal_encoder"
        z = np.tanh(_np_layer_norm(p, te + ".ln1", _np_linear(p, te + ".fc1", h)))
        z = np.tanh(_np_layer_norm(p, te + ".ln2", _np_linear(p, te + ".fc2", z)))
        x = np.concatenate([f, z], axis=-1)
        x = np.tanh(_np_layer_norm(p, prefix + ".ln1", _np_linear(p, prefix + ".fc1", x)))
        x = np.tanh(_np_layer_norm(p, prefix + ".ln2", _np_linear(p, prefix + ".fc2", x)))
    else:
        x = np.tanh(_np_linear(p, prefix + ".fc1", f))
        x = np.tanh(_np_linear(p, prefix + ".fc2", x))
    return _np_linear(p, prefix + ".fc3", x)


def numpy_forward(
    params: dict[str, np.ndarray], features: Any, history: Any | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Pure NumPy forward pass of either architecture from a flat param dict (file layout).

    Returns ``(action_probs [n, 3], values [n])``; computes in the params' dtype (float32 for the
    published weights) so it is a like-for-like latency baseline for the MLX model.
    """
    f, h = as_batch(features, history)
    logits = _np_head(params, "actor", f, h)
    logits = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(logits)
    probs = e / e.sum(axis=-1, keepdims=True)
    values = _np_head(params, "critic", f, h)[:, 0]
    return probs, values


def load_numpy_params(path: str | Path) -> dict[str, np.ndarray]:
    """Flat NumPy params straight from a weights file or model directory (no MLX modules)."""
    weights, _ = _read_weights(Path(path))
    return {k: np.array(v) for k, v in weights.items()}
