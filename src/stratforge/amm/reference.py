"""A slow, readable pure-Python model of one simulation: the executable specification.

It follows the same market model as the compiled core (`_core.c`) step by step and is used to
cross-check it bit for bit (tests) and as the in-run baseline of `benchmarks/engine.py`. Only fixed
fee strategies are modelled; the point is the market, not the hooks.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

from stratforge.amm import _core
from stratforge.amm.engine import SimConfig

_MASK64 = 2**64 - 1
_MASK128 = 2**128 - 1
_PCG_MUL = 0x2360ED051FC65DA44385DF649FCCF645
_ZIG_X, _ZIG_F = _core.ziggurat_tables()
_ZIG_R = _ZIG_X[1]
_LN2_HI, _LN2_LO, _INV_LN2 = 6.93147180369123816490e-01, 1.90821492927058770002e-10, 1.44269504088896338700e00
_P1, _P2, _P3 = 1.66666666666666019037e-01, -2.77777777770155933842e-03, 6.61375632143793436117e-05
_P4, _P5 = -1.65339022054652515390e-06, 4.13813679705723846039e-08


def libm_crate_exp(x: float) -> float:
    """exp as Rust's ``libm`` crate computes it (musl's port of fdlibm's exp), which the reference's
    log-normal and Poisson distributions use; see ``libm_crate_exp`` in ``_core.c`` for why."""
    high = (struct.unpack("<Q", struct.pack("<d", x))[0] >> 32) & 0x7FFFFFFF
    if high >= 0x4086232B:
        if x != x or x > 709.782712893383973096:
            return x * 2.0**1023  # NaN stays NaN, overflow gives inf
        if x < -745.13321910194110842:
            return 0.0
    if high > 0x3FD62E42:
        k = int(_INV_LN2 * x + (-0.5 if x < 0 else 0.5)) if high >= 0x3FF0A2B2 else (-1 if x < 0 else 1)
        hi, lo = x - k * _LN2_HI, k * _LN2_LO
        x = hi - lo
    elif high > 0x3E300000:
        k, hi, lo = 0, x, 0.0
    else:
        return 1.0 + x
    xx = x * x
    c = x - xx * (_P1 + xx * (_P2 + xx * (_P3 + xx * (_P4 + xx * _P5))))
    y = 1.0 + (x * c / (2.0 - c) - lo + hi)
    return y if k == 0 else math.ldexp(y, k)


class Pcg64:
    """rand_pcg's Lcg128Xsl64, seeded like rand_core's ``seed_from_u64``."""

    def __init__(self, seed: int) -> None:
        words, s = [], seed & _MASK64
        for _ in range(8):
            s = (s * 6364136223846793005 + 11634580027462260723) & _MASK64
            x = (((s >> 18) ^ s) >> 27) & 0xFFFFFFFF
            rot = s >> 59
            words.append(((x >> rot) | (x << ((32 - rot) % 32))) & 0xFFFFFFFF)
        w = [words[2 * i] | (words[2 * i + 1] << 32) for i in range(4)]
        self.inc = (w[2] | (w[3] << 64)) | 1
        self.state = ((w[0] | (w[1] << 64)) + self.inc) & _MASK128
        self.state = (self.state * _PCG_MUL + self.inc) & _MASK128

    def next_u64(self) -> int:
        self.state = (self.state * _PCG_MUL + self.inc) & _MASK128
        rot = self.state >> 122
        xsl = ((self.state >> 64) ^ self.state) & _MASK64
        return ((xsl >> rot) | (xsl << ((64 - rot) % 64))) & _MASK64

    def uniform(self) -> float:
        return (self.next_u64() >> 11) * 2.0**-53

    def open01(self) -> float:
        return float.fromhex(f"0x1.{self.next_u64() >> 12:013x}p+0") - (1.0 - 2.0**-53)

    def normal(self) -> float:
        while True:
            bits = self.next_u64()
            i = bits & 0xFF
            u = float.fromhex(f"0x1.{bits >> 12:013x}p+1") - 3.0
            x = u * _ZIG_X[i]
            if abs(x) < _ZIG_X[i + 1]:
                return x
            if i == 0:
                tx, ty = 1.0, 0.0
                while -2.0 * ty < tx * tx:
                    tx = math.log(self.open01()) / _ZIG_R
                    ty = math.log(self.open01())
                return tx - _ZIG_R if u < 0.0 else _ZIG_R - tx
            if _ZIG_F[i + 1] + (_ZIG_F[i] - _ZIG_F[i + 1]) * self.uniform() < math.exp(-x * x / 2.0):
                return x

    def poisson(self, exp_neg_lambda: float) -> int:
        result, p = 0.0, 1.0
        while p > exp_neg_lambda:
            p *= self.uniform()
            result += 1.0
        return int(result - 1.0)


def _wad_f64(v: float) -> float:
    """What a strategy is told: the f64 amount truncated to WAD, read back as f64."""
    return int(v * 1e18) / 1e18


@dataclass
class Amm:
    rx: float
    ry: float
    bid: float
    ask: float
    fees_x: float = 0.0
    fees_y: float = 0.0
    edge: float = 0.0

    def sell_x_quote(self, amount_x: float) -> tuple[float, float]:
        """AMM sells amount_x of X: (total Y in, fee)."""
        if amount_x <= 0.0 or amount_x >= self.rx:
            return 0.0, 0.0
        k = self.rx * self.ry
        gamma = min(max(1.0 - self.ask, 0.0), 1.0)
        net_y = k / (self.rx - amount_x) - self.ry
        if net_y <= 0.0:
            return 0.0, 0.0
        total = net_y / gamma
        return total, total - net_y

    def buy_x_quote(self, amount_x: float) -> tuple[float, float]:
        """AMM buys amount_x of X (gross, fee on input): (Y out, fee in X)."""
        if amount_x <= 0.0:
            return 0.0, 0.0
        gamma = min(max(1.0 - self.bid, 0.0), 1.0)
        y_out = self.ry - (self.rx * self.ry) / (self.rx + amount_x * gamma)
        return (y_out, amount_x * self.bid) if y_out > 0.0 else (0.0, 0.0)

    def buy_x(self, amount_x: float) -> float:
        y_out, fee = self.buy_x_quote(amount_x)
        if y_out > 0.0:
            self.rx += amount_x - fee
            self.fees_x += fee
            self.ry -= y_out
        return y_out

    def sell_x(self, amount_x: float) -> float:
        total, fee = self.sell_x_quote(amount_x)
        if total <= 0.0:
            return 0.0
        self.rx -= amount_x
        self.ry += total - fee
        self.fees_y += fee
        return total

    def sell_x_for_y(self, amount_y: float) -> float:
        """Trader pays amount_y of Y; returns X paid out or 0."""
        if amount_y <= 0.0:
            return 0.0
        k = self.rx * self.ry
        gamma = min(max(1.0 - self.ask, 0.0), 1.0)
        x_out = self.rx - k / (self.ry + amount_y * gamma)
        if x_out <= 0.0:
            return 0.0
        fee = amount_y * self.ask
        self.rx -= x_out
        self.ry += amount_y - fee
        self.fees_y += fee
        return x_out

    def arbitrage(self, p: float) -> None:
        """Closed-form profit-maximising arbitrage at fair price p."""
        k = self.rx * self.ry
        spot = self.ry / self.rx
        if spot < p:  # buy X from the AMM
            amount_x = self.rx - math.sqrt(k / ((1.0 - self.ask) * p))
            if amount_x <= 0.0:
                return
            amount_x = min(amount_x, self.rx * 0.99)
            total_y, _ = self.sell_x_quote(amount_x)
            profit = amount_x * p - total_y
            if total_y > 0.0 and profit > 0.0:
                self.sell_x(amount_x)
                self.edge += -profit
        elif spot > p:  # sell X to the AMM
            gamma = 1.0 - self.bid
            amount_x = (math.sqrt(k * gamma / p) - self.rx) / gamma
            if amount_x <= 0.0:
                return
            y_out, _ = self.buy_x_quote(amount_x)
            profit = y_out - amount_x * p
            if y_out > 0.0 and profit > 0.0:
                self.buy_x(amount_x)
                self.edge += -profit


def _split(a: tuple[float, float, float], b: tuple[float, float, float], total: float) -> tuple[float, float]:
    """Optimal split of an order across two AMMs; each AMM is (reserve in, reserve out, gamma)."""
    x1, y1, g1 = a
    x2, y2, g2 = b
    a2 = math.sqrt(x2 * g2 * y2)
    if a2 == 0.0:
        return total, 0.0
    r = math.sqrt(x1 * g1 * y1) / a2
    den = g1 + r * g2
    first = total / 2.0 if den == 0.0 else (r * (y2 + g2 * total) - y1) / den
    first = min(max(first, 0.0), total)
    return first, total - first


def simulate_fixed(
    config: SimConfig, bid: float, ask: float, normalizer_fee: float = 0.003
) -> tuple[float, float]:
    """Edges (submission, normalizer) of one simulation with fixed fees given as fractions."""
    m = config.market
    price_rng, retail_rng = Pcg64(config.seed), Pcg64(config.seed + 1)
    amms = [
        Amm(m.initial_x, m.initial_y, bid, ask),
        Amm(m.initial_x, m.initial_y, normalizer_fee, normalizer_fee),
    ]
    sigma = config.gbm_sigma
    drift, vol = (m.gbm_mu - 0.5 * sigma * sigma) * m.gbm_dt, sigma * math.sqrt(m.gbm_dt)
    exp_neg_lambda = libm_crate_exp(-max(config.retail_arrival_rate, 0.01))
    ln_sigma = max(m.retail_size_sigma, 0.01)
    ln_mu = math.log(max(config.retail_mean_size, 0.01)) - 0.5 * ln_sigma * ln_sigma
    p = m.initial_price
    for _ in range(m.n_steps):
        p *= math.exp(drift + vol * price_rng.normal())
        for amm in amms:
            amm.arbitrage(p)
        for _ in range(retail_rng.poisson(exp_neg_lambda)):
            size = libm_crate_exp(ln_mu + ln_sigma * retail_rng.normal())
            s, n = amms
            if retail_rng.uniform() < m.retail_buy_prob:
                legs = _split((s.rx, s.ry, 1.0 - s.ask), (n.rx, n.ry, 1.0 - n.ask), size)
                for amm, y in zip(amms, legs, strict=True):
                    if y > 0.0001 and (x_out := amm.sell_x_for_y(y)) > 0.0:
                        amm.edge += y - _wad_f64(x_out) * p
            else:
                total_x = size / p
                legs = _split((s.ry, s.rx, 1.0 - s.bid), (n.ry, n.rx, 1.0 - n.bid), total_x)
                for amm, x in zip(amms, legs, strict=True):
                    if x > 0.0001 and (y_out := amm.buy_x(x)) > 0.0:
                        amm.edge += x * p - _wad_f64(y_out)
    return amms[0].edge, amms[1].edge
