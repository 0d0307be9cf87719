"""Live order execution on Polymarket's CLOB through ``py-clob-client``.

Buys and sells go out as fill-or-kill market orders with a worst acceptable price; when the FOK is
killed (thin book), a GTC limit order at that price is posted, polled for ``limit_wait_s`` and the rest
cancelled. Fills are verified with ``get_order`` (``size_matched``) rather than trusted from the post
response. A sell that does not fill returns ``ok=False`` and the caller keeps the position open and
alerts: it is never dropped silently (the live fork's worst defect). Balance is checked before buys.

Environment (see docs/trader-operations.md): ``POLYMARKET_PRIVATE_KEY``, ``POLYMARKET_FUNDER_ADDRESS``,
``POLYMARKET_SIGNATURE_TYPE`` (0 EOA, 1 email/Magic, 2 browser proxy; a wrong type makes every order
fail), optional ``POLY_API_KEY``/``POLY_API_SECRET``/``POLY_API_PASSPHRASE`` (else derived).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

CLOB_HOST = "https://clob.polymarket.com"
POLYGON = 137
USDC_DECIMALS = 6
SECRET_ENV = ("POLYMARKET_PRIVATE_KEY", "POLY_API_SECRET", "POLY_API_PASSPHRASE", "POLY_API_KEY")


class LiveConfigError(RuntimeError):
    """Live trading cannot start (missing extra, credentials, balance or allowance): one line."""


@dataclass
class ExecResult:
    """Outcome of one buy or sell; ``shares``/``dollars`` are what verifiably filled."""

    ok: bool
    side: str
    token_id: str
    requested: float  # dollars for a buy, shares for a sell
    shares: float = 0.0
    dollars: float = 0.0
    order_id: str | None = None
    method: str = ""  # "fok" | "limit"
    error: str = ""
    fee: float = 0.0  # USDC, from the matched trades

    @property
    def avg_price(self) -> float | None:
        return self.dollars / self.shares if self.shares > 0 else None

    @property
    def partial(self) -> bool:
        target = self.requested if self.side == "SELL" else self.requested / max(self.avg_price or 1.0, 1e-9)
        return self.ok and self.shares + 1e-6 < target


class LiveExecutor:
    """Order placement over a ``py_clob_client.client.ClobClient`` (level-2 authenticated)."""

    def __init__(
        self, client: Any, limit_wait_s: float = 3.0, poll_s: float = 0.5, min_balance: float = 0.0
    ) -> None:
        self.client = client
        self.limit_wait_s = limit_wait_s
        self.poll_s = poll_s
        self.min_balance = min_balance

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, host: str | None = None, **kw: Any
    ) -> LiveExecutor:
        """Build the authenticated client from environment variables (raises with a clear message)."""
        from py_clob_client.client import ClobClient
        from py_clob_client.clob_types import ApiCreds

        env = os.environ if env is None else env
        missing = [k for k in ("POLYMARKET_PRIVATE_KEY", "POLYMARKET_FUNDER_ADDRESS") if not env.get(k)]
        if missing:
            raise LiveConfigError(f"live trading needs {', '.join(missing)} in the environment")
        sig = int(env.get("POLYMARKET_SIGNATURE_TYPE", "0"))
        if sig not in (0, 1, 2):
            raise LiveConfigError(
                "POLYMARKET_SIGNATURE_TYPE must be 0 (EOA), 1 (email/Magic) or 2 (browser proxy)"
            )
        client = ClobClient(
            host or env.get("POLYMARKET_CLOB_URL", CLOB_HOST),
            chain_id=POLYGON,
            key=env["POLYMARKET_PRIVATE_KEY"],
            signature_type=sig,
            funder=env["POLYMARKET_FUNDER_ADDRESS"],
        )
        if env.get("POLY_API_KEY") and env.get("POLY_API_SECRET") and env.get("POLY_API_PASSPHRASE"):
            creds = ApiCreds(env["POLY_API_KEY"], env["POLY_API_SECRET"], env["POLY_API_PASSPHRASE"])
        else:
            creds = client.create_or_derive_api_creds()
        client.set_api_creds(creds)
        return cls(client, **kw)

    def check_ready(self, trade_size: float) -> None:
        try:
            bal = self.balance()
        except Exception as exc:
            raise LiveConfigError(f"cannot read the wallet balance: {_err(exc)}") from None
        if bal < trade_size:
            raise LiveConfigError(f"wallet balance ${bal:.2f} is below one trade (${trade_size:.2f})")

    # -- account --------------------------------------------------------------------------------------
    def balance(self) -> float:
        """Collateral (USDC) balance in dollars."""
        from py_clob_client.clob_types import AssetType, BalanceAllowanceParams

        resp = self.client.get_balance_allowance(BalanceAllowanceParams(asset_type=AssetType.COLLATERAL))
        return float(resp.get("balance", 0)) / 10**USDC_DECIMALS

    def cancel(self, order_id: str) -> bool:
        try:
            resp = self.client.cancel(order_id)
        except Exception as exc:
            log.warning("cancel %s failed: %s", order_id, exc)
            return False
        return order_id in (resp or {}).get("canceled", [])

    # -- orders ---------------------------------------------------------------------------------------
    def buy(self, token_id: str, dollars: float, worst_price: float) -> ExecResult:
        """Spend ``dollars`` on ``token_id`` paying at most ``worst_price`` per share."""
        try:
            bal = self.balance()
        except Exception as exc:
            return ExecResult(False, "BUY", token_id, dollars, error=f"balance check failed: {exc}")
        if bal - dollars < self.min_balance:
            return ExecResult(
                False, "BUY", token_id, dollars, error=f"insufficient balance {bal:.2f} < {dollars:.2f}"
            )
        return self._execute("BUY", token_id, dollars, worst_price)

    def sell(self, token_id: str, shares: float, worst_price: float) -> ExecResult:
        """Sell ``shares`` of ``token_id`` receiving at least ``worst_price`` per share."""
        return self._execute("SELL", token_id, shares, worst_price)

    def _execute(self, side: str, token_id: str, amount: float, price: float) -> ExecResult:
        from py_clob_client.clob_types import MarketOrderArgs, OrderArgs, OrderType

        price = round(min(max(price, 0.01), 0.99), 2)
        errors = []
        try:
            order = self.client.create_market_order(
                MarketOrderArgs(
                    token_id=token_id, amount=amount, side=side, price=price, order_type=OrderType.FOK
                )
            )
            resp = self.client.post_order(order, OrderType.FOK)
            if resp.get("success") and resp.get("orderID"):
                res = self._verify(side, token_id, amount, resp["orderID"], "fok")
                if res.shares > 0:
                    return res
            errors.append(f"fok: {resp.get('errorMsg') or resp.get('status')}")
        except Exception as exc:
            errors.append(f"fok: {_err(exc)}")
        shares = amount if side == "SELL" else amount / price
        try:
            order = self.client.create_order(
                OrderArgs(token_id=token_id, price=price, size=round(shares, 2), side=side)
            )
            resp = self.client.post_order(order, OrderType.GTC)
            order_id = resp.get("orderID")
            if not resp.get("success") or not order_id:
                raise RuntimeError(resp.get("errorMsg") or "limit order rejected")
        except Exception as exc:
            errors.append(f"limit: {_err(exc)}")
            return ExecResult(False, side, token_id, amount, error="; ".join(errors))
        deadline = time.monotonic() + self.limit_wait_s
        res = self._verify(side, token_id, amount, order_id, "limit")
        while res.shares + 1e-9 < round(shares, 2) and time.monotonic() < deadline:
            time.sleep(self.poll_s)
            res = self._verify(side, token_id, amount, order_id, "limit")
        if res.shares + 1e-9 < round(shares, 2):
            self.cancel(order_id)
            res = self._verify(side, token_id, amount, order_id, "limit")  # fills racing the cancel
        if res.shares <= 0:
            errors.append("limit: not filled")
            return ExecResult(
                False, side, token_id, amount, order_id=order_id, method="limit", error="; ".join(errors)
            )
        return res

    def _verify(self, side: str, token_id: str, amount: float, order_id: str, method: str) -> ExecResult:
        """Ask the venue what actually filled (``size_matched`` shares at the order's price)."""
        try:
            info = self.client.get_order(order_id) or {}
        except Exception as exc:
            return ExecResult(
                False, side, token_id, amount, order_id=order_id, method=method, error=_err(exc)
            )
        matched = float(info.get("size_matched") or 0.0)
        price = float(info.get("price") or 0.0)
        return ExecResult(matched > 0, side, token_id, amount, matched, matched * price, order_id, method)


def _err(exc: Exception) -> str:
    msg = getattr(exc, "error_msg", None) or str(exc)
    return f"{type(exc).__name__}: {msg}"[:300]


class LiveExecution:
    """The :class:`~stratforge.trader.execution.Execution` of live trading: the engine's orders as
    venue orders (worst price = best price -/+ ``slippage``), fills as the venue reports them."""

    name = "live"

    def __init__(self, executor: LiveExecutor, slippage: float = 0.03) -> None:
        self.executor = executor
        self.slippage = slippage

    def buy(self, market: Any, side: str, usd: float, up_book: Any, now: float) -> Any:
        from stratforge.trader.broker import Fill

        book = up_book if side == "UP" else up_book.complement()
        ask = book.best_ask()
        if ask is None:
            return Fill(market.condition_id, side, "BUY", now, unfilled=usd, rejected="empty book")
        token_id = market.up_token if side == "UP" else market.down_token
        res = self.executor.buy(token_id, usd, worst_price=min(ask + self.slippage, 0.99))
        if not res.ok:
            return Fill(
                market.condition_id, side, "BUY", now, unfilled=usd, rejected=res.error or "buy failed"
            )
        return Fill(
            market.condition_id,
            side,
            "BUY",
            now,
            res.shares,
            res.dollars,
            res.fee,
            max(usd - res.dollars, 0.0),
        )

    def sell(self, pos: Any, up_book: Any, now: float) -> Any:
        from stratforge.trader.broker import Fill

        bid = pos.mark(up_book)
        worst = max((bid if bid is not None else 0.02) - self.slippage, 0.01)
        res = self.executor.sell(pos.token_id, pos.shares, worst_price=worst)
        if not res.ok:
            return Fill(
                pos.condition_id,
                pos.side,
                "SELL",
                now,
                unfilled=pos.shares,
                rejected=res.error or "sell failed",
            )
        return Fill(
            pos.condition_id, pos.side, "SELL", now, res.shares, res.dollars, res.fee,
            max(pos.shares - res.shares, 0.0),
        )  # fmt: skip

    def settle(self, pos: Any, up_wins: bool, now: float) -> Any:
        from stratforge.trader.execution import LOST, PENDING, Redemption

        if (pos.side == "UP") != up_wins:
            return Redemption(LOST)
        return Redemption(PENDING, "redeem the winning tokens on Polymarket (CTF redeemPositions)")
