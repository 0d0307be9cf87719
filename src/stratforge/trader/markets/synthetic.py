"""Seeded synthetic 15-minute up/down markets for BTC, ETH, SOL and XRP.

Per asset (each with its own random stream derived from the seed, so sessions are reproducible):

- Spot/futures log-price: per-second Gaussian returns with the asset's volatility, a volatility
  multiplier per 15-minute block (regimes) and Poisson jumps.
- Futures flow: aggTrades whose arrival rate follows a slow intensity process (and rises on big moves)
  and whose taker side leans with the price move (informed flow); closed 1-minute klines, including
  `warmup_minutes` of history before the first window.
- Prediction market: the TRUE UP probability is computable from the path,
  p(t) = Phi(ln(S_t / K) / (sigma_eff * sqrt(T - t))), K = S at window start, sigma_eff the per-second
  volatility including the jump variance. The market maker quotes the UP book around p(t - lag) plus
  AR(1) noise, on the 0.01 tick grid with 1-2 cent spreads. Spread and taker fees (see `broker`) are
  what a taker has to beat; the lag and the quote noise are all there is to exploit.

The default market is honest: the lag is drawn from 0-2 s per market (a public study of 1-second
recordings of BTC 15-minute markets found Binance leading the Polymarket mid by a median of ~0 s; no
public measurement supports lags of tens of seconds), and the book's level sizes and the
``last_trade_price`` sides are independent of the true probability given the quote (sizes are
persistent log-normal noise; a trade's side follows the quote's last move). So book imbalance tells
nothing the quote does not (``tests/trader/test_tell.py`` measures this).

The old market is available by flag: ``imbalance_lean > 0`` thins the stale side of the book in
proportion to the mispricing ``p(t) - quote`` (the tell the first trained model learned to read) and
``lag_s=(15, 40)`` restores the old lag (``--lean 0.25 --lag 15,40`` on the CLI).

Books are sent as a snapshot at the window start and every 60 s, and as `price_change` deltas in
between, exactly as the CLOB websocket does. Each market resolves twice over: the resolution source's
prices (``Session.resolutions``: strike and final spot) and the venue's ``market_resolved`` event
(the winning token, 2 s after the window end), so recordings can carry either (`replay.write_session`).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from stratforge.trader.markets.messages import (
    ASSETS,
    SYMBOLS,
    WINDOW_SECONDS,
    AggTrade,
    BookSnapshot,
    Kline,
    LastTrade,
    MarketInfo,
    MarketResolved,
    Message,
    PriceChange,
    Resolution,
)
from stratforge.trader.markets.session import Session

SECONDS_PER_YEAR = 365.0 * 24 * 3600
ANNUAL_VOL = {"BTC": 0.45, "ETH": 0.6, "SOL": 0.8, "XRP": 0.75}
START_PRICE = {"BTC": 95000.0, "ETH": 3300.0, "SOL": 190.0, "XRP": 2.2}
TRADE_NOTIONAL = {"BTC": 8000.0, "ETH": 5000.0, "SOL": 3000.0, "XRP": 2000.0}
TICK = 0.01
DEFAULT_LAG_S = (0.0, 2.0)  # seconds; see the module docstring
OLD_LAG_S = (15.0, 40.0)  # the first market's lag (with imbalance_lean 0.25): a hidden-tell market
OLD_LEAN = 0.25
RESOLUTION_DELAY_S = 2.0  # market_resolved arrives this long after the window end


@dataclass
class SyntheticConfig:
    assets: tuple[str, ...] = ASSETS
    n_windows: int = 1
    warmup_minutes: int = 60
    flow_lead_s: int = 120  # futures trades start this long before the first window
    lag_s: tuple[float, float] = DEFAULT_LAG_S  # per-market book lag behind the true probability
    book_noise: float = 0.01  # std of the AR(1) noise on the quoted centre
    half_spread: float = 0.005
    levels: int = 6
    level_size: float = 60.0  # shares at the best level (deeper levels hold more)
    imbalance_lean: float = 0.0  # > 0: the stale side thins per 0.05 of mispricing (a tell; off)
    trades_per_s: float = 2.0
    jump_rate_per_hour: float = 2.0
    jump_scale: float = 15.0  # jump std in units of the per-second volatility
    base_time: int = 1767225600  # 2026-01-01 00:00 UTC, aligned to 900 s


def _phi(x: np.ndarray) -> np.ndarray:
    erf = np.frompyfunc(math.erf, 1, 1)
    return 0.5 * (1.0 + erf(x / math.sqrt(2.0)).astype(np.float64))


def _hex_id(*parts: object) -> str:
    return "0x" + hashlib.sha256(repr(parts).encode()).hexdigest()


def _token_id(*parts: object) -> str:
    return str(int(hashlib.sha256(repr(parts).encode()).hexdigest()[:30], 16))


def first_window_start(seed: int, cfg: SyntheticConfig) -> int:
    return cfg.base_time + WINDOW_SECONDS * (seed % 100_000) * max(cfg.n_windows, 1)


def generate_session(seed: int, cfg: SyntheticConfig | None = None) -> Session:
    """Generate one reproducible session: `cfg.n_windows` consecutive windows for every asset."""
    cfg = cfg or SyntheticConfig()
    for a in cfg.assets:
        if a not in ANNUAL_VOL:
            raise ValueError(f"unknown asset {a!r}; choose from {', '.join(ASSETS)}")
    start0 = first_window_start(seed, cfg)
    markets: list[MarketInfo] = []
    messages: list[Message] = []
    resolutions: dict[str, Resolution] = {}
    truth: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for idx, asset in enumerate(cfg.assets):
        rng = np.random.default_rng(np.random.SeedSequence([seed, ASSETS.index(asset), 7919]))
        _gen_asset(asset, rng, seed, start0, cfg, markets, messages, resolutions, truth)
        del idx
    messages.sort(key=lambda m: m.ts)
    markets.sort(key=lambda m: (m.window_start, cfg.assets.index(m.asset)))
    return Session(markets, messages, resolutions, truth)


def _gen_asset(
    asset: str,
    rng: np.random.Generator,
    seed: int,
    start0: int,
    cfg: SyntheticConfig,
    markets: list[MarketInfo],
    messages: list[Message],
    resolutions: dict[str, Resolution],
    truth: dict[str, tuple[np.ndarray, np.ndarray]],
) -> None:
    sym = SYMBOLS[asset]
    warm = cfg.warmup_minutes * 60
    n = warm + cfg.n_windows * WINDOW_SECONDS + 1  # S[i] is the price at ts0 + i
    ts0 = start0 - warm
    sig = ANNUAL_VOL[asset] / math.sqrt(SECONDS_PER_YEAR)
    n_blocks = n // WINDOW_SECONDS + 1
    block_mult = np.exp(rng.normal(0.0, 0.35, n_blocks))
    sig_t = sig * block_mult[np.arange(n) // WINDOW_SECONDS]
    r = rng.normal(0.0, 1.0, n) * sig_t
    jump_p = cfg.jump_rate_per_hour / 3600.0
    r += (rng.random(n) < jump_p) * rng.normal(0.0, cfg.jump_scale * sig, n)
    r[0] = 0.0
    price = START_PRICE[asset] * np.exp(rng.normal(0.0, 0.05)) * np.exp(np.cumsum(r))

    # Trade intensity: a slow log-AR(1) per minute, raised on large moves.
    n_min = n // 60 + 1
    ar = np.empty(n_min)
    ar[0] = rng.normal(0.0, 0.4)
    shocks = rng.normal(0.0, 0.4 * math.sqrt(1 - 0.9**2), n_min)
    for i in range(1, n_min):
        ar[i] = 0.9 * ar[i - 1] + shocks[i]
    min_mult = np.exp(ar)
    z = np.zeros(n)
    z[:-1] = r[1:] / sig_t[:-1]  # the move during second i (from S[i] to S[i+1])
    lam = cfg.trades_per_s * min_mult[np.arange(n) // 60] * (1.0 + 0.5 * np.abs(z))

    # Warm-up klines from the path (no individual trades before the flow starts).
    flow_i0 = max(warm - cfg.flow_lead_s, 0)
    mean_notional = TRADE_NOTIONAL[asset]
    for m in range(flow_i0 // 60):
        seg = price[m * 60 : m * 60 + 61]
        qv = float(lam[m * 60 : m * 60 + 60].sum() * mean_notional)
        st = ts0 + m * 60
        messages.append(
            Kline(st + 60.0, sym, float(st), float(seg[0]), float(seg.max()), float(seg.min()), float(seg[-1]),
                  qv / float(seg[-1]), qv,
                  int(lam[m * 60 : m * 60 + 60].sum()), True)
        )  # fmt: skip
    first_kline_min = flow_i0 // 60

    # Trades from the first full minute of flow to the end.
    i_start = first_kline_min * 60
    secs = np.arange(i_start, n - 1)
    counts = rng.poisson(lam[secs])
    tot = int(counts.sum())
    sec_of = np.repeat(secs, counts)
    u = np.sort(rng.random(tot))  # sorted within-second offsets keep trade times ordered
    order = np.lexsort((u, sec_of))
    sec_of, u = sec_of[order], u[order]
    p_tr = price[sec_of] * (1.0 + u * (price[sec_of + 1] / price[sec_of] - 1.0))
    p_buy = 1.0 / (1.0 + np.exp(-1.5 * z[sec_of]))
    is_buy = rng.random(tot) < p_buy
    notional = mean_notional * np.exp(rng.normal(-0.18, 0.6, tot))
    qty = np.round(notional / p_tr, 4)
    qty = np.maximum(qty, 1e-4)
    t_tr = np.round((ts0 + sec_of + u) * 1000.0) / 1000.0  # venues stamp trades in milliseconds
    for k in range(tot):
        messages.append(AggTrade(float(t_tr[k]), sym, float(p_tr[k]), float(qty[k]), not bool(is_buy[k])))
    minute_of = (sec_of // 60).astype(np.int64)
    qv_min = np.bincount(minute_of, weights=p_tr * qty, minlength=n_min)
    bv_min = np.bincount(minute_of, weights=qty, minlength=n_min)
    nt_min = np.bincount(minute_of, minlength=n_min)
    for m in range(first_kline_min, (n - 1) // 60):
        seg = price[m * 60 : m * 60 + 61]
        st = ts0 + m * 60
        messages.append(
            Kline(st + 60.0, sym, float(st), float(seg[0]), float(seg.max()), float(seg.min()), float(seg[-1]),
                  float(bv_min[m]),
                  float(qv_min[m]), int(nt_min[m]), True)
        )  # fmt: skip

    sig_eff_base = math.sqrt(jump_p) * cfg.jump_scale * sig
    for w in range(cfg.n_windows):
        s_i = warm + w * WINDOW_SECONDS
        e_i = s_i + WINDOW_SECONDS
        w_start = float(ts0 + s_i)
        cid = _hex_id("stratforge-synthetic", seed, asset, int(w_start))
        info = MarketInfo(
            asset,
            w_start,
            cid,
            _token_id(cid, "Up"),
            _token_id(cid, "Down"),
            float(price[s_i]),
            w_start + 900,
        )
        markets.append(info)
        strike, final = float(price[s_i]), float(price[e_i])
        resolutions[cid] = Resolution(w_start + WINDOW_SECONDS, cid, strike, final)
        # The venue's word, as the market channel sends it a little after the window ends.
        winner = info.up_token if final >= strike else info.down_token
        messages.append(
            MarketResolved(w_start + WINDOW_SECONDS + RESOLUTION_DELAY_S, cid, winner,
                           "Up" if final >= strike else "Down")
        )  # fmt: skip
        idx = np.arange(s_i, e_i + 1)
        tau = (e_i - idx).astype(np.float64)
        sig_eff = np.sqrt(sig_t[idx] ** 2 + sig_eff_base**2)
        with np.errstate(divide="ignore", invalid="ignore"):
            zz = np.log(price[idx] / strike) / (sig_eff * np.sqrt(tau))
        zz[-1] = np.inf if final >= strike else -np.inf
        zz = np.nan_to_num(zz, posinf=50.0, neginf=-50.0)
        p_true = _phi(zz)
        truth[cid] = ((ts0 + idx).astype(np.float64), p_true)
        _gen_book(info, p_true, rng, cfg, messages)


_PRICES = [round(j * TICK, 2) for j in range(101)]


def _gen_book(
    info: MarketInfo, p_true: np.ndarray, rng: np.random.Generator, cfg: SyntheticConfig, out: list[Message]
) -> None:
    n = len(p_true) - 1  # seconds in the window
    lag = int(round(rng.uniform(*cfg.lag_s)))
    noise = np.empty(n)
    noise[0] = rng.normal(0.0, cfg.book_noise)
    eps = rng.normal(0.0, cfg.book_noise * math.sqrt(1 - 0.9**2), n)
    for i in range(1, n):
        noise[i] = 0.9 * noise[i - 1] + eps[i]
    lagged = p_true[np.maximum(np.arange(n) - lag, 0)]
    c = np.clip(lagged + noise, 0.02, 0.98)
    # Quotes in integer ticks (1 tick = 0.01).
    ask1 = np.minimum(np.ceil(np.round((c + cfg.half_spread) / TICK, 6)), 99).astype(np.int64)
    bid1 = np.minimum(np.maximum(np.floor(np.round((c - cfg.half_spread) / TICK, 6)), 1), ask1 - 1)
    bid1 = bid1.astype(np.int64)
    # The tell (off by default): the stale side thins in proportion to the mispricing.
    lean = np.exp(cfg.imbalance_lean * (p_true[:n] - c) / 0.05)
    # Per-level size noise, persistent: each (side, level) redraws with probability 0.3 per second.
    L = cfg.levels
    draws = np.exp(rng.normal(0.0, 0.6, (n, 2, L)))
    redraw = rng.random((n, 2, L)) < 0.3
    redraw[0] = True
    last = np.where(redraw, np.arange(n)[:, None, None], 0)
    last = np.maximum.accumulate(last, axis=0)
    lvl = np.take_along_axis(draws, last, axis=0)
    k = np.arange(L)
    depth = cfg.level_size * (1 + k)
    tilt_exp = 1.0 / (k + 1)
    bid_sz = np.round(depth * lvl[:, 0, :] * lean[:, None] ** tilt_exp, 2).tolist()
    ask_sz = np.round(depth * lvl[:, 1, :] * lean[:, None] ** (-tilt_exp), 2).tolist()
    bid1_l, ask1_l = bid1.tolist(), ask1.tolist()
    move_l = np.diff(bid1 + ask1, prepend=bid1[0] + ask1[0]).tolist()
    trade_u = rng.random(n).tolist()
    side_u = rng.random(n).tolist()
    trade_sz = np.round(rng.uniform(5, 80, n), 2).tolist()
    up, mkt = info.up_token, info.condition_id
    prev_bids: dict[float, float] = {}
    prev_asks: dict[float, float] = {}
    for i in range(n):
        ts = info.window_start + i + (0.0 if i == 0 else 0.5)
        b1, a1 = bid1_l[i], ask1_l[i]
        bids = {_PRICES[b1 - j]: bid_sz[i][j] for j in range(L) if b1 - j >= 1}
        asks = {_PRICES[a1 + j]: ask_sz[i][j] for j in range(L) if a1 + j <= 99}
        if i % 60 == 0:
            out.append(BookSnapshot(ts, mkt, up, sorted(bids.items(), reverse=True), sorted(asks.items())))
        else:
            changes: list[tuple[str, float, str, float]] = []
            for side, new, old in (("BUY", bids, prev_bids), ("SELL", asks, prev_asks)):
                for p, s in new.items():
                    if old.get(p) != s:
                        changes.append((up, p, side, s))
                for p in old:
                    if p not in new:
                        changes.append((up, p, side, 0.0))
            if changes:
                out.append(PriceChange(ts, mkt, changes))
        if trade_u[i] < 0.3:
            # The taker side follows the quote's last move (coin flip when it did not move): public
            # information only, never the true probability.
            buy = move_l[i] > 0 or (move_l[i] == 0 and side_u[i] < 0.5)
            out.append(
                LastTrade(
                    ts + 0.01,
                    mkt,
                    up,
                    _PRICES[a1] if buy else _PRICES[b1],
                    trade_sz[i],
                    "BUY" if buy else "SELL",
                )
            )
        prev_bids, prev_asks = bids, asks
