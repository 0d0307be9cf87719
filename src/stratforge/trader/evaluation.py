"""Evaluation, backtests and walk-forward tests, all through the trading engine.

``trader eval``, ``trader backtest`` and ``trader run --mode paper`` drive the same
:class:`~stratforge.trader.engine.DecisionEngine` (features -> policy -> confidence sizing -> safety
rules -> paper broker), ticked by the same replay loop
(:func:`stratforge.trader.replay_runner.replay_ticks`): the same input gives the same trades. The
only difference is where trades go (memory here, the store in ``run``).

- :func:`run_engine`: one policy over one session; the closed trades, per-market PnL and how every
  market was settled (a futures-price fallback is counted and flagged).
- :func:`evaluate`: every policy on the same held-out synthetic sessions, paired by seed.
- :func:`walk_forward`: recordings split by time; PPO trains on the earlier part (`train.train` on
  its tape), every policy is run on the later part, paired by market.
- :func:`summarize`: per-policy means with Student-t 95% intervals and the paired differences of the
  agent against each baseline, all from :mod:`stratforge.stats`.

Rule-based baselines need quantities the 18 features do not carry (the UP mid, the true probability
of a synthetic market): :class:`EngineContextPolicy` reads them from the engine's public state at
decision time. The learned model never sees them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stratforge.stats import mean_ci, paired
from stratforge.trader.baselines import BASELINES, ModelPolicy, TraderPolicy, make_baseline
from stratforge.trader.broker import BrokerConfig, trade_metrics
from stratforge.trader.engine import DecisionEngine, EngineConfig, inference_policy
from stratforge.trader.env import FeedState, record_tape
from stratforge.trader.execution import PaperExecution
from stratforge.trader.journal import MemoryJournal
from stratforge.trader.markets.replay import read_session
from stratforge.trader.markets.session import Session, merge_sessions, split_by_time, walk_forward_split_time
from stratforge.trader.markets.synthetic import SyntheticConfig, generate_session
from stratforge.trader.replay_runner import SessionSource, replay_ticks
from stratforge.trader.safety import Safety, SafetyConfig
from stratforge.trader.sizing import sizing_named

CONTEXT_KEYS = ("bid", "ask", "mid", "time_left", "true_prob", "market_index", "side")


@dataclass
class RunConfig:
    """What a run needs besides the policy and the data (the worker's defaults)."""

    tick_s: float = 5.0
    trade_size: float = 10.0
    sizing: str = "confidence"
    explore: bool = False  # seeded sampling (per market and tick) instead of the argmax
    broker: BrokerConfig = field(default_factory=BrokerConfig)
    safety: SafetyConfig = field(default_factory=SafetyConfig)

    def engine_config(self) -> EngineConfig:
        return EngineConfig(trade_size=self.trade_size, tick_s=self.tick_s, explore=self.explore)


class EngineContextPolicy:
    """A rule-based baseline (or the model) as an engine policy: the context rows are taken from the
    engine's public state in the order the engine observes its active markets."""

    def __init__(self, policy: TraderPolicy, session: Session) -> None:
        self.policy = policy
        self.name = policy.name
        self.session = session
        self.engine: DecisionEngine | None = None

    def action_probs(self, features: np.ndarray, history: np.ndarray) -> np.ndarray:
        if isinstance(self.policy, ModelPolicy):
            return self.policy.action_probs(features, history)
        assert self.engine is not None, "bind the engine first"
        eng = self.engine
        active = eng.active_markets(eng.now)
        ctx = {k: np.full(len(active), np.nan) for k in CONTEXT_KEYS}
        for i, m in enumerate(active):
            book = eng.feed.books[m.condition_id].book
            b, a = book.best_bid(), book.best_ask()
            ctx["bid"][i] = np.nan if b is None else b
            ctx["ask"][i] = np.nan if a is None else a
            ctx["mid"][i] = np.nan if (a is None or b is None) else 0.5 * (a + b)
            ctx["time_left"][i] = m.window_end - eng.now
            ctx["true_prob"][i] = self.session.true_prob(m.condition_id, eng.now)
            ctx["market_index"][i] = int(m.condition_id[-8:], 16) if m.condition_id.startswith("0x") else i
            pos = eng.positions.first_in(m.condition_id)
            ctx["side"][i] = 0.0 if pos is None else (1.0 if pos.side == "UP" else -1.0)
        return np.asarray(self.policy.action_probs(features, history, ctx), dtype=np.float64)


class ZeroedFeatures:
    """A model with some input features zeroed (in the observation and its history): an ablation."""

    def __init__(self, policy: Any, columns: Sequence[int]) -> None:
        self.policy = inference_policy(policy)
        self.columns = list(columns)

    def action_probs(self, features: np.ndarray, history: np.ndarray) -> np.ndarray:
        f = np.array(features, dtype=np.float32)
        h = np.array(history, dtype=np.float32).reshape(len(f), -1, f.shape[1])
        f[:, self.columns] = 0.0
        h[:, :, self.columns] = 0.0
        return np.asarray(self.policy.action_probs(f, h.reshape(len(f), -1)))


def ablated(model: ModelPolicy, columns: Sequence[int]) -> ModelPolicy:
    return ModelPolicy(ZeroedFeatures(model.policy, columns), name=f"model-zero-{','.join(map(str, columns))}")


@dataclass
class EngineRun:
    """The closed trades of one policy over one session (in close order) and their summary."""

    trades: list[dict[str, Any]]
    report: dict[str, Any]
    per_market: dict[str, float]  # condition id -> realized PnL (0 for markets never traded)
    settled_by: dict[str, int]  # settlement source -> positions settled that way


def trade_row(pos: Any, exit: Any) -> dict[str, Any]:
    """One closed trade in the form all three commands report (and the identity test compares)."""
    return {
        "market": pos.market.slug,
        "condition_id": pos.condition_id,
        "side": pos.side,
        "entry_time": round(pos.entry_time, 3),
        "entry_price": round(pos.entry_price, 6),
        "shares": round(exit.shares, 6),
        "exit_time": round(exit.time, 3),
        "exit_price": round(exit.price, 6),
        "exit_reason": exit.reason,
        "pnl": round(exit.pnl, 6),
        "settled_by": exit.settled_by,
    }


def run_engine(policy: TraderPolicy, session: Session, cfg: RunConfig | None = None) -> EngineRun:
    """Drive the trading engine (paper broker) over ``session`` with ``policy``."""
    cfg = cfg or RunConfig()
    feed = FeedState(session)
    journal = MemoryJournal()
    adapter = EngineContextPolicy(policy, session)
    fast = inference_policy(policy.policy) if isinstance(policy, ModelPolicy) else None
    engine: DecisionEngine
    safety = Safety(cfg.safety, clock=lambda: engine.now)
    engine = DecisionEngine(
        cfg.engine_config(), fast or adapter, PaperExecution(cfg.broker), feed, safety, journal,
        name="eval", sizing=sizing_named(cfg.sizing),
    )  # fmt: skip
    adapter.engine = engine
    for m in session.markets:
        engine.add_market(m)
    start = min(m.window_start for m in session.markets)
    replay_ticks(engine, feed, SessionSource(session), start, cfg.tick_s)
    trades = [trade_row(p, e) for p, e in journal.trades]
    per_market = {m.condition_id: 0.0 for m in session.markets}
    for t in trades:
        per_market[t["condition_id"]] = per_market.get(t["condition_id"], 0.0) + t["pnl"]
    settled_by: dict[str, int] = {}
    for _, e in journal.trades:
        if e.reason == "settlement":
            settled_by[e.settled_by] = settled_by.get(e.settled_by, 0) + 1
    report = _report(trades)
    report["open_at_end"] = len(engine.positions)
    report["settled_by"] = settled_by
    return EngineRun(trades, report, per_market, settled_by)


def _report(trades: list[dict[str, Any]]) -> dict[str, Any]:
    from stratforge.trader.broker import ClosedTrade

    closed = [
        ClosedTrade(t["condition_id"], "", t["side"], t["entry_time"], t["exit_time"], t["shares"],
                    0.0, t["pnl"], 0.0, t["exit_reason"])  # fmt: skip
        for t in trades
    ]
    rep = trade_metrics(closed)
    rep.pop("roi", None)
    rep.pop("fees_paid", None)
    rep["exit_reasons"] = {}
    for t in trades:
        rep["exit_reasons"][t["exit_reason"]] = rep["exit_reasons"].get(t["exit_reason"], 0) + 1
    return rep


# -- comparisons -------------------------------------------------------------------------------------
def summarize(pnl: dict[str, list[float]], agent: str = "model", unit: str = "episode") -> dict[str, Any]:
    """Per-policy mean PnL per unit with 95% CIs, and agent - baseline paired differences."""
    out: dict[str, Any] = {"unit": unit, "n": len(next(iter(pnl.values()), []))}
    out["policies"] = {
        name: {"total_pnl": float(np.sum(v)), "mean": mean_ci(v).to_json()} for name, v in pnl.items()
    }
    if agent in pnl:
        diffs = {}
        for name, v in pnl.items():
            if name != agent:
                c = paired(pnl[agent], v)
                diffs[name] = c.to_json() | {"beats": bool(c.low > 0)}
        out["paired_difference"] = diffs
        rivals = {k: d for k, d in diffs.items() if k in BASELINES and k != "oracle"}
        out["beats_all_non_oracle"] = bool(rivals) and all(d["beats"] for d in rivals.values())
        best = max(rivals, key=lambda k: float(np.mean(pnl[k]))) if rivals else None
        out["best_baseline"] = best
        if "oracle" in pnl and np.sum(pnl["oracle"]) > 0:
            out["oracle_share"] = float(np.sum(pnl[agent]) / np.sum(pnl["oracle"]))
    return out


@dataclass
class EvalResult:
    seeds: list[int]
    pnl: dict[str, list[float]]  # per policy, per episode PnL after fees
    reports: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def summary(self, agent: str = "model") -> dict[str, Any]:
        out = summarize(self.pnl, agent, "episode")
        out["seeds"] = [self.seeds[0], self.seeds[-1]]
        for name, reps in self.reports.items():
            p = out["policies"][name]
            p["trades"] = sum(r["n_trades"] for r in reps)
            wins = sum(round(r["win_rate"] * r["n_trades"]) for r in reps)
            p["win_rate"] = wins / p["trades"] if p["trades"] else 0.0
            p["exit_reasons"] = _sum_counts(r["exit_reasons"] for r in reps)
            p["settled_by"] = _sum_counts(r["settled_by"] for r in reps)
        return out


def _sum_counts(dicts: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for d in dicts:
        for k, v in d.items():
            out[k] = out.get(k, 0) + v
    return out


def evaluate(
    policies: dict[str, TraderPolicy],
    seeds: Sequence[int],
    synthetic: SyntheticConfig | None = None,
    cfg: RunConfig | None = None,
    progress: Callable[[int], None] | None = None,
) -> EvalResult:
    """Run every policy on the same held-out synthetic sessions (paired by seed)."""
    res = EvalResult(list(seeds), {k: [] for k in policies}, {k: [] for k in policies})
    for j, seed in enumerate(seeds):
        session = generate_session(seed, synthetic or SyntheticConfig())
        for name, pol in policies.items():
            run = run_engine(fresh(pol), session, cfg)
            res.pnl[name].append(float(sum(run.per_market.values())))
            res.reports[name].append(run.report)
        if progress is not None:
            progress(j)
    return res


def fresh(policy: TraderPolicy) -> TraderPolicy:
    """A stateful rule starts every run fresh (the model and stateless rules are returned as is)."""
    return policy if isinstance(policy, ModelPolicy) else make_baseline(policy.name)


def backtest(policy: TraderPolicy, replay_path: str | Path, cfg: RunConfig | None = None) -> dict[str, Any]:
    """One policy over a replay file through the engine: report, trades and per-market PnL."""
    run = run_engine(policy, read_session(replay_path), cfg)
    return run.report | {"trades": run.trades, "per_market": run.per_market}


# -- walk-forward -------------------------------------------------------------------------------------
@dataclass
class WalkForwardResult:
    split_time: float
    train_markets: int
    test_markets: int
    pnl: dict[str, list[float]]  # per policy, per test market
    trades: dict[str, list[dict[str, Any]]]
    reports: dict[str, dict[str, Any]]
    training: dict[str, Any] | None

    def summary(self, agent: str = "model") -> dict[str, Any]:
        out = summarize(self.pnl, agent, "market")
        out |= {"split_time": self.split_time, "train_markets": self.train_markets,
                "test_markets": self.test_markets, "training": self.training}  # fmt: skip
        for name, rep in self.reports.items():
            out["policies"][name] |= {"trades": rep["n_trades"], "win_rate": rep["win_rate"],
                                      "exit_reasons": rep["exit_reasons"], "settled_by": rep["settled_by"]}  # fmt: skip
        return out


def load_recordings(paths: Sequence[str | Path]) -> Session:
    return merge_sessions([read_session(p) for p in paths])


def walk_forward(
    session: Session,
    out_dir: str | Path,
    train_fraction: float = 0.5,
    train_cfg: Any = None,
    model: TraderPolicy | None = None,
    cfg: RunConfig | None = None,
    progress: Callable[[int, dict[str, Any]], None] | None = None,
) -> WalkForwardResult:
    """Split ``session`` by time; train PPO on the earlier part (unless ``model`` is given, or the
    fraction is 0: then ``model`` is evaluated on all of it) and run the agent and every baseline on
    the later part. Baselines that need a ground truth (the oracle) run only when the recording has
    one (synthetic recordings written with it)."""
    from stratforge.trader.train import TrainConfig, load_trader_policy, train

    out = Path(out_dir)
    training = None
    if train_fraction <= 0:
        if model is None:
            raise ValueError("--train-fraction 0 needs --model (there is nothing to train on)")
        split, test = min(m.window_start for m in session.markets), session
        n_train = 0
    else:
        split = walk_forward_split_time(session, train_fraction)
        early, test = split_by_time(session, split)
        n_train = len(early.markets)
        if model is None:
            tcfg = train_cfg or TrainConfig()
            tape = record_tape(early, tcfg.env_config())
            training = train(tcfg, out / "train", progress=progress, tape=tape)
            model = load_trader_policy(training["model_dir"])
    assert model is not None
    policies: dict[str, TraderPolicy] = {"model": model}
    has_truth = bool(test.truth)
    policies |= {b: make_baseline(b) for b in BASELINES if b != "oracle" or has_truth}
    pnl, trades, reports = {}, {}, {}
    for name, pol in policies.items():
        run = run_engine(fresh(pol), test, cfg)
        pnl[name] = [run.per_market.get(m.condition_id, 0.0) for m in test.markets]
        trades[name] = run.trades
        reports[name] = run.report
    return WalkForwardResult(split, n_train, len(test.markets), pnl, trades, reports, training)


def write_json(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=float))
    return path

