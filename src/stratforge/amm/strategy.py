"""The strategy interface of the AMM simulator.

A strategy sets the bid and ask fee of one AMM, exactly like the challenge's Solidity hooks:

* ``after_initialize(initial_x, initial_y)`` is called once per simulation with the starting
  reserves in WAD and returns ``(bid_fee, ask_fee)`` in WAD. Failing here fails the run.
* ``after_swap(is_buy, amount_x, amount_y, timestamp, reserve_x, reserve_y)`` is called after
  every trade the AMM executes (arbitrage and retail), all amounts in WAD (truncated from f64, as
  the reference does), ``is_buy`` meaning the AMM bought X and ``timestamp`` the step index. It
  returns the new ``(bid_fee, ask_fee)``; returning ``None``, raising, or returning anything that
  is not two integers in ``[0, MAX_FEE]`` keeps the previous fees and counts as a hook failure.

Strategies are described by a picklable *spec* (``StrategySpec``) so that worker processes can
build a fresh instance for every simulation, the way the reference deploys a fresh contract per
simulation. ``FixedFee`` is a native spec: the compiled core recognises it and never calls back
into Python. Solidity strategies (``stratforge.amm.evm``) are run by the core's own EVM, so their
``afterSwap`` never leaves C either. Any other spec's instances are called from the compiled core
through the two hook methods, which is how dynamic Python strategies (and the pyrevm engine) plug in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

WAD = 10**18
BPS = 10**14  # one basis point in WAD
MAX_FEE = 10**17  # 10 %: the largest fee a hook may return


def bps_to_wad(bps: float) -> int:
    """Fee in basis points -> WAD integer (exact for whole and fractional bps down to 1e-14)."""
    return round(bps * BPS)


@runtime_checkable
class Strategy(Protocol):
    """One live strategy instance, used for exactly one simulation."""

    def after_initialize(self, initial_x: int, initial_y: int) -> tuple[int, int]: ...

    def after_swap(
        self,
        is_buy: bool,
        amount_x: int,
        amount_y: int,
        timestamp: int,
        reserve_x: int,
        reserve_y: int,
    ) -> tuple[int, int] | None: ...


@runtime_checkable
class StrategySpec(Protocol):
    """A picklable description of a strategy that builds fresh instances."""

    @property
    def name(self) -> str: ...

    def create(self) -> Strategy: ...


@dataclass(frozen=True)
class FixedFee:
    """Constant bid and ask fee; evaluated entirely inside the compiled core."""

    bid_bps: float
    ask_bps: float | None = None

    def __post_init__(self) -> None:
        for value in (self.bid_bps, self.ask_fee_bps):
            if not 0 <= value <= 1000:
                raise ValueError(f"fee must be between 0 and 1000 bps (10%), got {value}")

    @property
    def ask_fee_bps(self) -> float:
        return self.bid_bps if self.ask_bps is None else self.ask_bps

    @property
    def name(self) -> str:
        if self.ask_bps is None or self.ask_bps == self.bid_bps:
            return f"Fixed {self.bid_bps:g} bps"
        return f"Fixed {self.bid_bps:g}/{self.ask_bps:g} bps"

    @property
    def fees_wad(self) -> tuple[int, int]:
        return bps_to_wad(self.bid_bps), bps_to_wad(self.ask_fee_bps)

    def create(self) -> FixedFee:
        return self

    def after_initialize(self, initial_x: int, initial_y: int) -> tuple[int, int]:
        return self.fees_wad

    def after_swap(self, *trade: object) -> tuple[int, int]:
        return self.fees_wad


#: The challenge's normalizer: a fixed 30 bps AMM competing for the same flow.
NORMALIZER = FixedFee(30)
