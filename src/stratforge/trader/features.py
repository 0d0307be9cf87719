"""Market state (order book, futures flow) and the 18 observation features of the Phase 5 agent.

Every feature is clamped to [-1, 1]. The layout matches the published Phase 5 weights; the defects of
the reference implementation are fixed where noted (feature 10 spans a real 5 minutes, feature 11 is a
real volume-expansion ratio, books apply ``price_change`` deltas as well as snapshots).

| idx | name            | formula (before clamping to [-1, 1])                                   | unit  |
|-----|-----------------|------------------------------------------------------------------------|-------|
| 0   | ret_1m          | 50 * (P_t / P_{t-60s} - 1), P = last futures trade price                | x50   |
| 1   | ret_5m          | 50 * (P_t / P_{t-300s} - 1)                                             | x50   |
| 2   | ret_10m         | 50 * (P_t / P_{t-600s} - 1)                                             | x50   |
| 3   | imbalance_l1    | (bid1 - ask1) / (bid1 + ask1), sizes of the best UP-book levels         | ratio |
| 4   | imbalance_l5    | same over the summed sizes of the best 5 levels per side                | ratio |
| 5   | trade_flow      | (B - S) / (B + S), taker buy/sell notional decayed with a 30 s half-life | ratio |
| 6   | cvd_accel       | (CVD[t-10s, t] - CVD[t-20s, t-10s]) / traded notional[t-20s, t]         | ratio |
| 7   | spread_pct      | 20 * (ask1 - bid1) / mid of the UP book                                 | x20   |
| 8   | trade_intensity | futures trades per second over the last 10 s, / 10                      | 1/s   |
| 9   | large_trade     | 1 at a trade > 3x the median notional of the last 100; 5 s half-life    | flag  |
| 10  | vol_5m          | 3 * sqrt(sum of squared UP-mid changes over the last 300 s)             | x3    |
| 11  | vol_expansion   | mean quote volume of the last 5 closed 1m klines / last 60, minus 1     | ratio |
| 12  | has_position    | 1 if a position is open                                                 | flag  |
| 13  | position_side   | +1 UP, -1 DOWN, 0 flat                                                  | sign  |
| 14  | unrealized_pnl  | (exit value at the best bid after taker fee - cost) / cost (one function: `unrealized_roi`) | ROI |
| 15  | time_remaining  | seconds to window end / 900                                             | frac  |
| 16  | vol_regime      | 1 if std(1m log returns, last 60 klines) * sqrt(60) > 1%                | flag  |
| 17  | trend_regime    | 1 if abs(close_t / close_{t-60 klines} - 1) > 0.5%                      | flag  |

Differences from the reference: feature 10 was the std of the last 30 ticks of the UP price (about
15 s); feature 11 divided 1h volume by "24h" volume that was also 1h (always 0); feature 14 was dollar
PnL / 50, here a scale-free return; feature 6 was raw CVD change / 1e6, here a scale-free ratio.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass

import numpy as np

from stratforge.trader.fees import FeeSchedule
from stratforge.trader.markets.messages import AggTrade, BookSnapshot, Kline, PriceChange

N_FEATURES = 18
HISTORY_LEN = 5
FEATURE_NAMES: tuple[str, ...] = (
    "ret_1m",
    "ret_5m",
    "ret_10m",
    "imbalance_l1",
    "imbalance_l5",
    "trade_flow",
    "cvd_accel",
    "spread_pct",
    "trade_intensity",
    "large_trade",
    "vol_5m",
    "vol_expansion",
    "has_position",
    "position_side",
    "unrealized_pnl",
    "time_remaining",
    "vol_regime",
    "trend_regime",
)

FLOW_HALF_LIFE_S = 30.0
LARGE_FLAG_HALF_LIFE_S = 5.0
VOL_WINDOW_S = 300.0


def clamp(x: float, lo: float = -1.0, hi: float = 1.0) -> float:
    if x != x:  # NaN never reaches the network
        return 0.0
    return lo if x < lo else hi if x > hi else x


class OrderBook:
    """One outcome token's book, updated by snapshots and by price_change deltas."""

    __slots__ = ("bids", "asks", "ts")

    def __init__(self) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.ts = 0.0

    def apply_snapshot(self, snap: BookSnapshot) -> None:
        self.bids = {p: s for p, s in snap.bids if s > 0}
        self.asks = {p: s for p, s in snap.asks if s > 0}
        self.ts = snap.ts

    def apply_change(self, price: float, side: str, size: float, ts: float) -> None:
        levels = self.bids if side == "BUY" else self.asks
        if size <= 0:
            levels.pop(price, None)
        else:
            levels[price] = size
        self.ts = ts

    def best_bid(self) -> float | None:
        return max(self.bids) if self.bids else None

    def best_ask(self) -> float | None:
        return min(self.asks) if self.asks else None

    def mid(self) -> float | None:
        b, a = self.best_bid(), self.best_ask()
        if b is None or a is None:
            return None
        return 0.5 * (a + b)

    def bid_levels(self, n: int | None = None) -> list[tuple[float, float]]:
        lv = sorted(self.bids.items(), reverse=True)
        return lv if n is None else lv[:n]

    def ask_levels(self, n: int | None = None) -> list[tuple[float, float]]:
        lv = sorted(self.asks.items())
        return lv if n is None else lv[:n]

    def complement(self) -> OrderBook:
        """The other outcome's book: Polymarket matches UP and DOWN orders against each other, so a
        bid for UP at p is an ask for DOWN at 1 - p."""
        other = OrderBook()
        other.bids = {round(1.0 - p, 6): s for p, s in self.asks.items()}
        other.asks = {round(1.0 - p, 6): s for p, s in self.bids.items()}
        other.ts = self.ts
        return other


class MarketBook:
    """The UP-token book of one market plus the mid changes for the 5-minute volatility."""

    def __init__(self, up_token: str) -> None:
        self.up_token = up_token
        self.book = OrderBook()
        self._last_mid: float | None = None
        self._moves: deque[tuple[float, float]] = deque()  # (ts, squared mid change)
        self._acc = 0.0

    def on_snapshot(self, snap: BookSnapshot) -> None:
        if snap.asset_id != self.up_token:
            return  # the DOWN book mirrors the UP book; we derive it (see OrderBook.complement)
        self.book.apply_snapshot(snap)
        self._sample(snap.ts)

    def on_change(self, msg: PriceChange) -> None:
        touched = False
        book, up = self.book, self.up_token
        for asset_id, price, side, size in msg.changes:
            if asset_id == up:
                book.apply_change(price, side, size, msg.ts)
                touched = True
        if touched:
            self._sample(msg.ts)

    def _sample(self, ts: float) -> None:
        m = self.book.mid()
        if m is None or m == self._last_mid:
            return
        if self._last_mid is not None:
            d2 = (m - self._last_mid) ** 2
            self._moves.append((ts, d2))
            self._acc += d2
        self._last_mid = m

    def realized_vol(self, now: float) -> float:
        """sqrt(sum of squared mid changes) over the last VOL_WINDOW_S seconds (queries move forward
        in time, so old changes are evicted incrementally)."""
        cutoff = now - VOL_WINDOW_S
        moves = self._moves
        while moves and moves[0][0] < cutoff:
            self._acc -= moves.popleft()[1]
        if not moves:
            self._acc = 0.0
        return math.sqrt(max(self._acc, 0.0))


class FuturesFlow:
    """Futures trade flow and 1-minute klines of one symbol."""

    def __init__(self) -> None:
        self.last_price: float | None = None
        self._sec_t: list[float] = []  # one price sample per second (for the returns)
        self._sec_p: list[float] = []
        self._buy = 0.0
        self._sell = 0.0
        self._flow_t = 0.0
        # Trade times with running sums of signed and absolute notional (prefix sums: window queries
        # are two bisections).
        self._tt: list[float] = []
        self._cs: list[float] = []
        self._cn: list[float] = []
        self._sizes: deque[float] = deque(maxlen=100)
        self._large = 0.0
        self._large_t = 0.0
        self._large_threshold = 0.0
        self._n_trades = 0
        self.klines: deque[Kline] = deque(maxlen=61)
        self._kline_feats: tuple[float, float, float] | None = None

    def _record_price(self, ts: float, price: float) -> None:
        if self._sec_t and ts < self._sec_t[-1] + 1.0:
            self._sec_p[-1] = price  # keep the latest price inside the current second
        else:
            self._sec_t.append(ts)
            self._sec_p.append(price)
            if len(self._sec_t) > 4000:  # keep ~1 h; trim in chunks to stay O(1) amortised
                del self._sec_t[:1000]
                del self._sec_p[:1000]

    def on_trade(self, tr: AggTrade) -> None:
        ts, notional = tr.ts, tr.notional
        self.last_price = tr.price
        self._record_price(ts, tr.price)
        decay = 0.5 ** (max(ts - self._flow_t, 0.0) / FLOW_HALF_LIFE_S)
        self._buy *= decay
        self._sell *= decay
        self._flow_t = ts
        if tr.buyer_is_maker:
            self._sell += notional
            signed = -notional
        else:
            self._buy += notional
            signed = notional
        self._tt.append(ts)
        self._cs.append((self._cs[-1] if self._cs else 0.0) + signed)
        self._cn.append((self._cn[-1] if self._cn else 0.0) + notional)
        if len(self._tt) > 20000:  # keep the recent part; sums stay consistent (differences only)
            del self._tt[:10000], self._cs[:10000], self._cn[:10000]
        if self._large_threshold > 0 and notional > self._large_threshold:
            self._large = 1.0
            self._large_t = ts
        self._sizes.append(notional)
        self._n_trades += 1
        if len(self._sizes) >= 20 and self._n_trades % 10 == 0:
            # 3x the median of the last 100 trades, refreshed every 10 trades (cheap, same signal)
            srt = sorted(self._sizes)
            k = len(srt) // 2
            median = srt[k] if len(srt) % 2 else 0.5 * (srt[k - 1] + srt[k])
            self._large_threshold = 3.0 * median

    def on_kline(self, k: Kline) -> None:
        if not k.closed:
            return
        if self.klines and self.klines[-1].start >= k.start:
            return  # duplicate or out of order
        self.klines.append(k)
        self._kline_feats = None
        # Closed klines extend the price history when no trade is newer (warm-up before the flow).
        if not self._sec_t or k.start + 60.0 >= self._sec_t[-1] + 1.0:
            self._sec_t.append(k.start + 60.0)
            self._sec_p.append(k.close)
        if self.last_price is None:
            self.last_price = k.close

    def price_at(self, t: float) -> float | None:
        i = bisect_right(self._sec_t, t) - 1
        return None if i < 0 else self._sec_p[i]

    def ret(self, now: float, lookback: float) -> float:
        p1, p0 = self.price_at(now), self.price_at(now - lookback)
        if p1 is None or p0 is None or p0 <= 0:
            return 0.0
        return p1 / p0 - 1.0

    def flow_imbalance(self, now: float) -> float:
        tot = self._buy + self._sell
        return 0.0 if tot <= 0 else (self._buy - self._sell) / tot

    def _sums(self, t: float) -> tuple[int, float, float]:
        """(trade count, signed sum, notional sum) of the trades at or before t."""
        i = bisect_right(self._tt, t)
        if i == 0:
            return 0, 0.0, 0.0
        return i, self._cs[i - 1], self._cn[i - 1]

    def cvd_accel(self, now: float) -> float:
        _, s0, n0 = self._sums(now - 20.0)
        _, s1, _ = self._sums(now - 10.0)
        _, s2, n2 = self._sums(now)
        total = n2 - n0
        return 0.0 if total <= 0 else ((s2 - s1) - (s1 - s0)) / total

    def intensity(self, now: float) -> float:
        return (self._sums(now)[0] - self._sums(now - 10.0)[0]) / 10.0

    def large_flag(self, now: float) -> float:
        if self._large <= 0:
            return 0.0
        return self._large * 0.5 ** (max(now - self._large_t, 0.0) / LARGE_FLAG_HALF_LIFE_S)

    def kline_features(self) -> tuple[float, float, float]:
        """(vol_expansion, vol_regime, trend_regime), recomputed only when a kline closes."""
        if self._kline_feats is None:
            self._kline_feats = (self.vol_expansion(), self.vol_regime(), self.trend_regime())
        return self._kline_feats

    def vol_expansion(self) -> float:
        ks = self.klines
        if len(ks) < 10:
            return 0.0
        vols = [k.quote_volume for k in ks][-60:]
        base = sum(vols) / len(vols)
        recent = sum(vols[-5:]) / len(vols[-5:])
        return 0.0 if base <= 0 else recent / base - 1.0

    def vol_regime(self) -> float:
        closes = [k.close for k in self.klines][-61:]
        if len(closes) < 11:
            return 0.0
        rets = np.diff(np.log(np.asarray(closes)))
        return 1.0 if float(np.std(rets)) * math.sqrt(60.0) > 0.01 else 0.0

    def trend_regime(self) -> float:
        closes = [k.close for k in self.klines]
        if len(closes) < 11:
            return 0.0
        return 1.0 if abs(closes[-1] / closes[0] - 1.0) > 0.005 else 0.0


@dataclass(slots=True)
class PositionView:
    """What the features need to know about the open position of one market."""

    side: int = 0  # +1 UP, -1 DOWN, 0 flat
    unrealized_roi: float = 0.0


def unrealized_roi(shares: float, cost: float, token_book: OrderBook, fees: FeeSchedule) -> float:
    """Feature 14 before clamping, the one definition for training, evaluation and live trading:
    the return on cost if the position were sold now at its own token's best bid, after the taker
    fee of that sale (in USDC, see `fees`). -1 when the token has no bid; 0 without a cost."""
    if cost <= 0:
        return 0.0
    bid = token_book.best_bid()
    if bid is None:
        return -1.0
    return (shares * bid - fees.fee_usdc(shares, bid)) / cost - 1.0


def position_view(
    token: str, shares: float, cost: float, up_book: OrderBook, fees: FeeSchedule
) -> PositionView:
    """The PositionView of an open position of ``token`` ("UP"/"DOWN") given the market's UP book."""
    own = up_book if token == "UP" else up_book.complement()
    return PositionView(1 if token == "UP" else -1, unrealized_roi(shares, cost, own, fees))


def compute_features(
    flow: FuturesFlow, mbook: MarketBook, pos: PositionView, now: float, window_end: float
) -> np.ndarray:
    """The 18-feature observation of one market at time `now` (see the module table)."""
    book = mbook.book
    bids, asks = book.bid_levels(5), book.ask_levels(5)
    imb1 = imb5 = spread_pct = 0.0
    if bids and asks:
        b1, a1 = bids[0][1], asks[0][1]
        imb1 = (b1 - a1) / (b1 + a1)
        bs, as_ = sum(s for _, s in bids), sum(s for _, s in asks)
        imb5 = (bs - as_) / (bs + as_)
        mid = 0.5 * (bids[0][0] + asks[0][0])
        spread_pct = (asks[0][0] - bids[0][0]) / max(mid, 0.01)
    f = np.empty(N_FEATURES, dtype=np.float32)
    f[0] = clamp(50.0 * flow.ret(now, 60.0))
    f[1] = clamp(50.0 * flow.ret(now, 300.0))
    f[2] = clamp(50.0 * flow.ret(now, 600.0))
    f[3] = clamp(imb1)
    f[4] = clamp(imb5)
    f[5] = clamp(flow.flow_imbalance(now))
    f[6] = clamp(flow.cvd_accel(now))
    f[7] = clamp(20.0 * spread_pct)
    f[8] = clamp(flow.intensity(now) / 10.0)
    f[9] = clamp(flow.large_flag(now))
    f[10] = clamp(3.0 * mbook.realized_vol(now))
    vol_exp, vol_reg, trend_reg = flow.kline_features()
    f[11] = clamp(vol_exp)
    f[12] = 1.0 if pos.side != 0 else 0.0
    f[13] = float(pos.side)
    f[14] = clamp(pos.unrealized_roi) if pos.side != 0 else 0.0
    f[15] = clamp((window_end - now) / 900.0, 0.0, 1.0)
    f[16] = vol_reg
    f[17] = trend_reg
    return f


class HistoryWindow:
    """The last HISTORY_LEN feature vectors of one market, oldest first, zero-padded at the front.

    The current observation is included (it is the newest row), as in the Phase 5 inference code.
    Exactly one `push` per decision tick keeps training and inference identical.
    """

    def __init__(self, length: int = HISTORY_LEN, n_features: int = N_FEATURES) -> None:
        self.length = length
        self.n_features = n_features
        self._rows: deque[np.ndarray] = deque(maxlen=length)

    def reset(self) -> None:
        self._rows.clear()

    def __len__(self) -> int:
        return len(self._rows)

    def rows(self) -> list[list[float]]:
        """The pushed rows, oldest first (what a checkpoint stores; push them back to restore)."""
        return [r.tolist() for r in self._rows]

    def push(self, features: np.ndarray) -> np.ndarray:
        self._rows.append(np.asarray(features, dtype=np.float32).copy())
        return self.stacked()

    def stacked(self) -> np.ndarray:
        out = np.zeros((self.length, self.n_features), dtype=np.float32)
        rows = list(self._rows)
        if rows:
            out[self.length - len(rows) :] = np.stack(rows)
        return out.reshape(-1)
