"""Polymarket's taker fee, per market, as the venue charges it.

The schedule (docs.polymarket.com/trading/fees):

    F = C * rate * (p * (1 - p)) ** exponent        C shares traded at price p

F is what the docs' fee table calls the fee in shares: it is worth ``F * p`` USDC, so the effective
rate on the trade's value ``C * p`` is ``rate * (p(1-p))^exponent``. At launch (January 2026, 15-minute
crypto markets: rate 0.25, exponent 2) the table gives 100 shares at 0.50 -> $0.78 (1.56%), i.e.
F = 1.5625 shares worth 0.78 USDC. The fee is collected **in shares on buys** (the buyer receives
``C - F`` shares for ``C * p`` USDC) and **in USDC on sells** (the seller receives ``C * p - F * p``).
Only takers pay; makers pay nothing (their rebates are paid out daily and are not modelled).

The rate and exponent are per market and have changed: mid-2026 market metadata shows
``feeType: crypto_fees_v2`` with ``feeSchedule: {rate: 0.07, exponent: 1, takerOnly: true,
rebateRate: 0.2}`` in the Gamma market object and ``fd: {r: 0.07, e: 1}`` in CLOB V2 market info
(``py-clob-client-v2`` reads ``fd.r`` / ``fd.e``). ``schedule_from_metadata`` reads either shape;
without metadata the current crypto schedule (:data:`CRYPTO_FEES_V2`) is the default.

Note: ``py-clob-client-v2``'s ``adjust_buy_amount_for_fees`` and NautilusTrader's
``compute_commission`` treat ``C * rate * (p(1-p))^e`` as a USDC amount. We follow the venue's fee
table (the only published worked numbers), which values it at ``F * p``; with the client's reading a
fee would be ``1/p`` times larger (twice as large at 0.50).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    rate: float
    exponent: float

    def fee_shares(self, shares: float, price: float, maker: bool = False) -> float:
        """F = C * rate * (p(1-p))^exponent; 0 for maker fills."""
        if maker:
            return 0.0
        p = min(max(price, 0.0), 1.0)
        return shares * self.rate * (p * (1.0 - p)) ** self.exponent

    def fee_usdc(self, shares: float, price: float, maker: bool = False) -> float:
        """The fee's value in USDC (what a sell pays; what a buy's fee shares are worth)."""
        return self.fee_shares(shares, price, maker) * min(max(price, 0.0), 1.0)


CRYPTO_FEES_V2 = FeeSchedule(rate=0.07, exponent=1.0)  # crypto_fees_v2, mid-2026 (the default)
LAUNCH_CRYPTO_FEES = FeeSchedule(rate=0.25, exponent=2.0)  # 15-minute crypto markets, January 2026
NO_FEES = FeeSchedule(rate=0.0, exponent=1.0)


def schedule_from_metadata(meta: Mapping[str, Any] | None) -> FeeSchedule | None:
    """The fee schedule in a Gamma market object (``feeSchedule: {rate, exponent}``), CLOB V2 market
    info (``fd: {r, e}``) or our replay ``meta`` market record (``fee_rate``/``fee_exponent``);
    None when the metadata has none."""
    if not meta:
        return None
    if meta.get("feesEnabled") is False:
        return NO_FEES
    if isinstance(meta.get("feeSchedule"), Mapping):
        fs = meta["feeSchedule"]
        return FeeSchedule(float(fs.get("rate", 0.0)), float(fs.get("exponent", 1.0)))
    if isinstance(meta.get("fd"), Mapping):
        fd = meta["fd"]
        return FeeSchedule(float(fd.get("r", 0.0)), float(fd.get("e", 1.0)))
    if meta.get("fee_rate") is not None:
        return FeeSchedule(float(meta["fee_rate"]), float(meta.get("fee_exponent") or 1.0))
    return None
