"""Position sizing: how many USDC an entry spends (the engine's ``Sizing``: ``(trade_size, price)``).

``confidence`` (the default) is the seed's ``get_confidence_size``: the fraction of the trade size
grows linearly with how far the market price is from 0.5, from 0.25 at 0.5 to 1.0 at 0 or 1::

    fraction = 0.25 + 0.75 * min(1, 2 * |price - 0.5|)

``price`` is the price of the token being bought (its ask when the decision is made). The rule is
symmetric around 0.5, so the UP and the DOWN token of one market (prices p and about 1 - p) size
alike. ``fixed`` spends the full trade size on every entry. The training environment, the
evaluation and the trading engine all size entries through these functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable

MIN_FRACTION = 0.25


def confidence_fraction(price: float) -> float:
    """0.25 at price 0.5 rising linearly to 1.0 at 0 or 1 (0.25 when the price is unknown)."""
    if not math.isfinite(price):
        return MIN_FRACTION
    extremeness = min(1.0, 2.0 * abs(price - 0.5))
    return MIN_FRACTION + (1.0 - MIN_FRACTION) * extremeness


def confidence_size(trade_size: float, price: float) -> float:
    return trade_size * confidence_fraction(price)


def fixed_size(trade_size: float, price: float) -> float:
    return trade_size


SIZINGS: dict[str, Callable[[float, float], float]] = {"confidence": confidence_size, "fixed": fixed_size}


def sizing_named(name: str) -> Callable[[float, float], float]:
    try:
        return SIZINGS[name]
    except KeyError:
        raise ValueError(f"unknown sizing {name!r}; choose from {', '.join(SIZINGS)}") from None
