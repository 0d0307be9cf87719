"""Do the published Phase 5 weights still see the inputs they were trained on?

Our features 5, 6, 9, 10 and 14 are defined differently from the reference's (see `features`):

| idx | ours                                                   | the reference (what the weights learned on)        |
|-----|--------------------------------------------------------|----------------------------------------------------|
| 5   | taker buy/sell notional imbalance, 30 s half-life decay | the same imbalance over the futures stream's window |
| 6   | (CVD last 10 s - CVD previous 10 s) / notional 20 s     | 10 * (CVD change since the previous 0.5 s tick) / 1e6 |
| 9   | large-trade flag decayed with a 5 s half-life           | 0/1 flag                                           |
| 10  | 3 * sqrt(sum of squared UP-mid changes, last 300 s)     | 20 * std of the last 30 UP prices (0.5 s ticks: ~15 s) |
| 14  | return on cost of selling now after the taker fee       | dollar PnL / 50                                    |

The stats file of the weights (``rl_model_stats.npz``) holds only reward statistics and the
architecture, and the golden inputs are uniform noise, so neither says what the training inputs
looked like. What can be measured is (a) how our definitions' values compare with the reference
definitions' values on the same market states, and (b) how much the published policy's decisions
change when the reference definitions are substituted. :func:`measure` does both over synthetic
sessions; ``benchmarks/phase5_inputs.py`` prints the table.

Reference forms are re-implemented here from their published definitions, only for this comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import ks_2samp

from stratforge.trader.env import EnvConfig, FeedState, record_tape
from stratforge.trader.markets.messages import SYMBOLS, AggTrade
from stratforge.trader.markets.synthetic import SyntheticConfig, generate_session

DIFFERING = (5, 6, 9, 10, 14)
REF_TICK_S = 0.5


@dataclass
class InputComparison:
    ours: np.ndarray  # [n, 18] observations as our code computes them
    reference: np.ndarray  # [n, 18] the same with features 5, 6, 9, 10, 14 in the reference's form
    history_ours: np.ndarray  # [n, 90]
    history_reference: np.ndarray  # [n, 90]


def _reference_f5_f6_f9(trades: list[AggTrade], t: float) -> tuple[float, float, float]:
    """Reference 5 (imbalance of the last 60 s of taker notional), 6 (10 * CVD change over the last
    0.5 s tick / 1e6, CVD in quote notional) and 9 (0/1: a trade above 3x the median of the previous
    100 in the last tick)."""
    recent = [x for x in trades if t - 60.0 < x.ts <= t]
    buy = sum(x.notional for x in recent if not x.buyer_is_maker)
    sell = sum(x.notional for x in recent if x.buyer_is_maker)
    f5 = 0.0 if buy + sell <= 0 else (buy - sell) / (buy + sell)
    last = [x for x in recent if x.ts > t - REF_TICK_S]
    dcvd = sum(-x.notional if x.buyer_is_maker else x.notional for x in last)
    f6 = 10.0 * dcvd / 1e6
    before = [x.notional for x in trades if x.ts <= t - REF_TICK_S][-100:]
    thr = 3.0 * float(np.median(before)) if len(before) >= 20 else np.inf
    f9 = 1.0 if any(x.notional > thr for x in last) else 0.0
    return f5, f6, f9


def measure(seeds: range, synthetic: SyntheticConfig | None = None, tick_s: float = 5.0) -> InputComparison:
    """Observations of every active market at every decision tick of the sessions, both ways. The
    position features (12-14) are filled as if a position had been opened at the first tick of each
    window with a full trade size of 10 USDC (so feature 14 is compared on the same positions)."""
    synthetic = synthetic or SyntheticConfig(warmup_minutes=15)
    ours, ref = [], []
    windows: list[list[int]] = []  # per row: the row indices of its market's last 5 observations
    for seed in seeds:
        session = generate_session(seed, synthetic)
        tape = record_tape(session, EnvConfig(tick_s=tick_s, synthetic=synthetic))
        trades_by_sym: dict[str, list[AggTrade]] = {}
        for m in session.messages:
            if isinstance(m, AggTrade):
                trades_by_sym.setdefault(m.symbol, []).append(m)
        fine = FeedState(session)  # UP mids every 0.5 s for the reference feature 10
        mids: dict[str, list[float]] = {}
        entry: dict[str, tuple[float, float]] = {}  # market -> (shares, cost)
        rows_of: dict[str, list[int]] = {}
        for rec in tape.ticks:
            for slot, m in enumerate(rec.markets):
                if m is None:
                    continue
                cid = m.condition_id
                f = rec.features[slot].astype(np.float64).copy()
                g = f.copy()
                seq = mids.setdefault(cid, [])
                k = len(seq)
                while m.window_start + k * REF_TICK_S <= rec.t:
                    fine.advance(m.window_start + k * REF_TICK_S)
                    mid = fine.books[cid].book.mid()
                    seq.append(np.nan if mid is None else mid)
                    k += 1
                last30 = np.asarray([x for x in seq[-30:] if x == x])
                g[10] = np.clip(20.0 * float(np.std(last30)) if len(last30) >= 2 else 0.0, -1, 1)
                f5, f6, f9 = _reference_f5_f6_f9(trades_by_sym.get(SYMBOLS[m.asset], []), rec.t)
                g[5], g[6], g[9] = np.clip([f5, f6, f9], -1, 1)
                book = rec.books[slot]
                if cid not in entry and book is not None and book.best_ask() is not None:
                    ask = book.best_ask()
                    entry[cid] = (10.0 / ask, 10.0)  # fee-free shares: the comparison is of scale
                if cid in entry and book is not None:
                    shares, cost = entry[cid]
                    bid = book.best_bid() or 0.0
                    pnl = shares * bid - cost
                    f[12], f[13], g[12], g[13] = 1.0, 1.0, 1.0, 1.0
                    f[14] = np.clip(pnl / cost, -1, 1)
                    g[14] = np.clip(pnl / 50.0, -1, 1)
                mine = rows_of.setdefault(cid, [])
                mine.append(len(ours))
                windows.append(mine[-5:])
                ours.append(f)
                ref.append(g)
    a, b = np.asarray(ours, np.float32), np.asarray(ref, np.float32)
    return InputComparison(a, b, _histories(a, windows), _histories(b, windows))


def _histories(rows: np.ndarray, windows: list[list[int]]) -> np.ndarray:
    """The 5-step windows (oldest first, zero-padded), as `features.HistoryWindow` builds them."""
    out = np.zeros((len(rows), 5, rows.shape[1]), np.float32)
    for i, idx in enumerate(windows):
        out[i, 5 - len(idx) :] = rows[idx]
    return out.reshape(len(rows), -1)


def summarize(cmp: InputComparison, policy: object | None = None) -> dict[str, object]:
    """Per differing feature: quantiles both ways and the share of our values outside the reference
    values' 1-99% range; with ``policy`` (the published weights): how often its argmax action and
    its action shares change when the reference forms are substituted."""
    out: dict[str, object] = {"n": int(len(cmp.ours))}
    feats = {}
    for j in DIFFERING:
        x, y = cmp.ours[:, j], cmp.reference[:, j]
        lo, hi = np.percentile(y, [1, 99])
        feats[j] = {
            "ours_q": np.percentile(x, [1, 25, 50, 75, 99]).round(4).tolist(),
            "reference_q": np.percentile(y, [1, 25, 50, 75, 99]).round(4).tolist(),
            "ours_std": float(x.std()),
            "reference_std": float(y.std()),
            "outside_reference_1_99": float(np.mean((x < lo - 1e-9) | (x > hi + 1e-9))),
            "ks_distance": float(ks_2samp(x, y).statistic),  # max CDF gap (a distance, no test)
        }
    out["features"] = feats
    if policy is not None:
        pa = np.asarray(policy.action_probs(cmp.ours, cmp.history_ours))  # type: ignore[attr-defined]
        pb = np.asarray(policy.action_probs(cmp.reference, cmp.history_reference))  # type: ignore[attr-defined]
        out["argmax_agreement"] = float(np.mean(pa.argmax(1) == pb.argmax(1)))
        out["action_share_ours"] = np.bincount(pa.argmax(1), minlength=3).tolist()
        out["action_share_reference"] = np.bincount(pb.argmax(1), minlength=3).tolist()
        out["mean_total_variation"] = float(0.5 * np.abs(pa - pb).sum(1).mean())
        per = {}
        for j in DIFFERING:  # one feature at a time (in the current row and the history)
            mixed, mixed_h = cmp.ours.copy(), cmp.history_ours.reshape(len(cmp.ours), 5, 18).copy()
            mixed[:, j] = cmp.reference[:, j]
            mixed_h[:, :, j] = cmp.history_reference.reshape(len(cmp.ours), 5, 18)[:, :, j]
            pm = np.asarray(policy.action_probs(mixed, mixed_h.reshape(len(mixed), -1)))  # type: ignore[attr-defined]
            per[j] = float(np.mean(pa.argmax(1) == pm.argmax(1)))
        out["argmax_agreement_one_feature"] = per
    return out
