"""Pure-Python twins of the shipped Solidity templates, for fast native pre-screening.

Each class repeats its template's logic with Python integers and the base contract's integer
helpers (floor division, like uint256), so with the same parameters it returns the same fees as
the compiled contract; a parameter search can screen hundreds of candidates with the native engine
(milliseconds per simulation) before paying for the EVM. ``tests/explore/test_templates.py`` checks
the twins against the EVM whenever the Solidity path is available.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

WAD = 10**18


def wmul(x: int, y: int) -> int:
    return x * y // WAD


def wdiv(x: int, y: int) -> int:
    return x * WAD // y


def clamp(v: int, lo: int, hi: int) -> int:
    return lo if v < lo else hi if v > hi else v


def absdiff(a: int, b: int) -> int:
    return a - b if a > b else b - a


class _Base:
    def __init__(self, p: dict[str, int]) -> None:
        self.p = p
        self.slots = [0] * 32


class FixedFeeRef(_Base):
    def after_initialize(self, x: int, y: int) -> tuple[int, int]:
        return self.p["BID_FEE"], self.p["ASK_FEE"]

    def after_swap(self, *trade: Any) -> tuple[int, int]:
        return self.p["BID_FEE"], self.p["ASK_FEE"]


class FairPriceSkewRef(_Base):
    def after_initialize(self, x: int, y: int) -> tuple[int, int]:
        s, base = self.slots, self.p["BASE_FEE"]
        s[0] = s[1] = base
        s[3] = wdiv(y, x)
        return base, base

    def after_swap(self, is_buy: bool, ax: int, ay: int, ts: int, rx: int, ry: int) -> tuple[int, int]:
        p, s = self.p, self.slots
        spot = wdiv(ry, rx)
        fair = s[3]
        if ts + 1 != s[2]:
            s[2] = ts + 1
            gamma = WAD - (s[0] if is_buy else s[1])
            implied = wmul(spot, gamma) if is_buy else wdiv(spot, gamma)
            fair = wmul(fair, WAD - p["ALPHA"]) + wmul(implied, p["ALPHA"])
            s[3] = fair
        gap = wdiv(absdiff(fair, spot), spot)
        floor, cap, base = p["FEE_FLOOR"], p["FEE_CAP"], p["BASE_FEE"]
        exposed = clamp(base + wmul(gap, p["STALE_K"]), floor, cap)
        cut = wmul(gap, p["PULL_K"])
        other = clamp(base - cut if base > cut + floor else floor, floor, cap)
        bid, ask = (other, exposed) if fair > spot else (exposed, other)
        s[0], s[1] = bid, ask
        return bid, ask


class VolEmaRef(_Base):
    def after_initialize(self, x: int, y: int) -> tuple[int, int]:
        p, s = self.p, self.slots
        fee = clamp(p["BASE_FEE"] + wmul(p["SIGMA_K"], p["SIGMA_INIT"]), 0, p["FEE_CAP"])
        s[0] = s[1] = fee
        s[3] = wdiv(y, x)
        s[4] = p["SIGMA_INIT"]
        return fee, fee

    def after_swap(self, is_buy: bool, ax: int, ay: int, ts: int, rx: int, ry: int) -> tuple[int, int]:
        p, s = self.p, self.slots
        if ts + 1 == s[2]:
            return s[0], s[1]
        s[2] = ts + 1
        spot = wdiv(ry, rx)
        gamma = WAD - (s[0] if is_buy else s[1])
        implied = wmul(spot, gamma) if is_buy else wdiv(spot, gamma)
        prev = s[3]
        ret = min(wdiv(absdiff(implied, prev), prev), p["RET_CAP"])
        sigma = wmul(s[4], p["SIGMA_DECAY"]) + wmul(ret, WAD - p["SIGMA_DECAY"])
        s[3], s[4] = implied, sigma
        fee = clamp(p["BASE_FEE"] + wmul(p["SIGMA_K"], sigma), 0, p["FEE_CAP"])
        s[0] = s[1] = fee
        return fee, fee


class StepFlowRef(_Base):
    def after_initialize(self, x: int, y: int) -> tuple[int, int]:
        rest = self.p["REST_FEE"]
        self.slots[0] = self.slots[1] = rest
        return rest, rest

    def _towards(self, fee: int, target: int) -> int:
        if fee < target:
            return fee + wmul(target - fee, self.p["REVERT"])
        return fee - wmul(fee - target, self.p["REVERT"])

    def after_swap(self, is_buy: bool, ax: int, ay: int, ts: int, rx: int, ry: int) -> tuple[int, int]:
        p, s = self.p, self.slots
        if ts + 1 != s[2]:
            s[2] = ts + 1
            if is_buy:
                bid, ask = p["EXPOSED_FEE"], p["FAVORED_FEE"]
            else:
                bid, ask = p["FAVORED_FEE"], p["EXPOSED_FEE"]
        else:
            bid = self._towards(s[0], p["REST_FEE"])
            ask = self._towards(s[1], p["REST_FEE"])
        s[0], s[1] = bid, ask
        return bid, ask


class ToxicityRef(_Base):
    MAX_ELAPSED = 16

    def after_initialize(self, x: int, y: int) -> tuple[int, int]:
        return self.p["BASE_FEE"], self.p["BASE_FEE"]

    def after_swap(self, is_buy: bool, ax: int, ay: int, ts: int, rx: int, ry: int) -> tuple[int, int]:
        p, s = self.p, self.slots
        tox, last = s[1], s[0]
        first = ts + 1 != last
        if first:
            elapsed = min(1 if last == 0 else ts + 1 - last, self.MAX_ELAPSED)
            for _ in range(elapsed):
                tox = wmul(tox, p["DECAY"])
            s[0] = ts + 1
        size = wdiv(ay, ry)
        if first:
            size = wmul(size, p["FIRST_MULT"])
        if size > tox:
            tox += wmul(size - tox, p["RISE"])
        s[1] = tox
        fee = clamp(p["BASE_FEE"] + wmul(tox, p["TOX_K"]), 0, p["FEE_CAP"])
        return fee, fee


class InventorySkewRef(_Base):
    def after_initialize(self, x: int, y: int) -> tuple[int, int]:
        self.slots[0] = x
        return self.p["BASE_FEE"], self.p["BASE_FEE"]

    def after_swap(self, is_buy: bool, ax: int, ay: int, ts: int, rx: int, ry: int) -> tuple[int, int]:
        p = self.p
        x0 = self.slots[0]
        skew = wmul(wdiv(absdiff(rx, x0), x0), p["SKEW_K"])
        floor, cap, base = p["FEE_FLOOR"], p["FEE_CAP"], p["BASE_FEE"]
        up = clamp(base + skew, floor, cap)
        down = clamp(base - skew if base > skew + floor else floor, floor, cap)
        return (up, down) if rx > x0 else (down, up)


class RegimeSwitchRef(_Base):
    def after_initialize(self, x: int, y: int) -> tuple[int, int]:
        p, s = self.p, self.slots
        s[1] = wdiv(y, x)
        s[2] = (p["HI_THRESH"] + p["LO_THRESH"]) // 2
        return p["CALM_FEE"], p["CALM_FEE"]

    def after_swap(self, is_buy: bool, ax: int, ay: int, ts: int, rx: int, ry: int) -> tuple[int, int]:
        p, s = self.p, self.slots
        spot = wdiv(ry, rx)
        if ts + 1 != s[0]:
            s[0] = ts + 1
            prev = s[1]
            move = wdiv(absdiff(spot, prev), prev)
            ema = wmul(s[2], p["DECAY"]) + wmul(move, WAD - p["DECAY"])
            s[2] = ema
            if s[3] == 0 and ema > p["HI_THRESH"]:
                s[3] = 1
            elif s[3] == 1 and ema < p["LO_THRESH"]:
                s[3] = 0
        s[1] = spot
        fee = p["WILD_FEE"] if s[3] == 1 else p["CALM_FEE"]
        return fee, fee


class AdaptiveComboRef(_Base):
    SIGMA_INIT = 10**15
    RET_CAP = 3 * 10**16
    MAX_ELAPSED = 16

    def after_initialize(self, x: int, y: int) -> tuple[int, int]:
        s, base = self.slots, self.p["BASE_FEE"]
        s[0] = s[1] = base
        s[3] = wdiv(y, x)
        s[4] = self.SIGMA_INIT
        return base, base

    def after_swap(self, is_buy: bool, ax: int, ay: int, ts: int, rx: int, ry: int) -> tuple[int, int]:
        p, s = self.p, self.slots
        spot = wdiv(ry, rx)
        fair, sigma, tox, last = s[3], s[4], s[5], s[2]
        if ts + 1 != last:
            elapsed = min(1 if last == 0 else ts + 1 - last, self.MAX_ELAPSED)
            for _ in range(elapsed):
                tox = wmul(tox, p["TOX_DECAY"])
            s[2] = ts + 1
            gamma = WAD - (s[0] if is_buy else s[1])
            implied = wmul(spot, gamma) if is_buy else wdiv(spot, gamma)
            ret = min(wdiv(absdiff(implied, fair), fair), self.RET_CAP)
            sigma = wmul(sigma, p["SIGMA_DECAY"]) + wmul(ret, WAD - p["SIGMA_DECAY"])
            fair = wmul(fair, WAD - p["ALPHA"]) + wmul(implied, p["ALPHA"])
            if ret > tox:
                tox = ret
        gap = wdiv(absdiff(fair, spot), spot)
        floor, cap = p["FEE_FLOOR"], p["FEE_CAP"]
        mid = p["BASE_FEE"] + wmul(sigma, p["SIGMA_K"]) + wmul(tox, p["TOX_K"])
        exposed = clamp(mid + wmul(gap, p["STALE_K"]), floor, cap)
        cut = wmul(gap, p["PULL_K"])
        other = clamp(mid - cut if mid > cut + floor else floor, floor, cap)
        bid, ask = (other, exposed) if fair > spot else (exposed, other)
        s[0], s[1], s[3], s[4], s[5] = bid, ask, fair, sigma, tox
        return bid, ask


REFERENCES: dict[str, type[_Base]] = {
    "fixed_fee": FixedFeeRef,
    "fair_price_skew": FairPriceSkewRef,
    "vol_ema": VolEmaRef,
    "step_flow": StepFlowRef,
    "toxicity": ToxicityRef,
    "inventory_skew": InventorySkewRef,
    "regime_switch": RegimeSwitchRef,
    "adaptive_combo": AdaptiveComboRef,
}


@dataclass(frozen=True)
class ReferenceSpec:
    """Picklable spec of a native twin: template name + the integer parameter values."""

    template: str
    params: tuple[tuple[str, int], ...]

    @property
    def name(self) -> str:
        return f"{self.template}[native]"

    def create(self) -> _Base:
        return REFERENCES[self.template](dict(self.params))
