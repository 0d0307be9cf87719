"""Live order execution on Polymarket's CLOB V2 through ``py-clob-client-v2``.

Orders: a fill-or-kill market order with a worst acceptable price first; when the FOK is killed
(thin book), a GTC limit order at that price, polled for ``limit_wait_s``, the rest cancelled. What
filled is read from the matched **trades** (``GET /data/trades`` by the trade ids of the order), not
from the order's limit price: for a taker order the shares and prices of its maker fills, for a
resting order its own fills. Trades the chain rejected (status ``FAILED``) do not count. V2 sets fees
at match time: the taker pays ``C * rate * (p(1-p))^exponent`` with the market's ``fd.r`` / ``fd.e``
(CLOB market info), in shares on buys and in USDC on sells (:mod:`stratforge.trader.fees`). A sell
that does not fill returns ``ok=False``: the engine keeps the position open and alerts.

Collateral is pUSD. Before live trading starts, :meth:`LiveExecutor.check_ready` reads the balance
and the allowances of the V2 exchange contracts (``GET /balance-allowance``); a balance below one
trade or a missing allowance refuses to start, and every buy re-checks the balance.

Environment (see docs/trader-operations.md): ``POLYMARKET_PRIVATE_KEY``, ``POLYMARKET_SIGNATURE_TYPE``
(0 EOA, 1 Polymarket proxy (email/Magic), 2 Gnosis safe (browser wallet), 3 deposit wallet /
EIP-1271; a wrong type makes every order fail), ``POLYMARKET_FUNDER_ADDRESS`` (the wallet holding the
funds; required for types 1-3), optional ``POLY_API_KEY``/``POLY_API_SECRET``/``POLY_API_PASSPHRASE``
(else derived from the key) and ``POLYMARKET_CLOB_URL``. Errors never include secret values.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from stratforge.trader.broker import Fill
from stratforge.trader.execution import LOST, PENDING, Redemption
from stratforge.trader.features import OrderBook
from stratforge.trader.fees import CRYPTO_FEES_V2, FeeSchedule, schedule_from_metadata
from stratforge.trader.markets.messages import MarketInfo
from stratforge.trader.positions import UP, Position

log = logging.getLogger(__name__)

CLOB_HOST = "https://clob.polymarket.com"
POLYGON = 137
PUSD_DECIMALS = 6
SIGNATURE_TYPES = {0: "EOA", 1: "Polymarket proxy", 2: "Gnosis safe", 3: "deposit wallet (EIP-1271)"}
FAILED = "FAILED"


class LiveConfigError(RuntimeError):
    """Live trading cannot start (missing extra, credentials, balance or allowance): one line."""


@dataclass
class OrderResult:
    """Outcome of one buy or sell, from the venue's matched trades."""

    ok: bool
    side: str  # BUY | SELL
    token_id: str
    requested: float  # USDC for a buy, shares for a sell
    shares: float = 0.0  # shares matched
    dollars: float = 0.0  # USDC paid (buy) or received before fee (sell), at the matched prices
    fee_shares: float = 0.0  # buy: fee withheld in shares
    fee_usdc: float = 0.0  # sell: fee paid in USDC
    order_id: str | None = None
    method: str = ""  # fok | limit
    error: str = ""
    trade_ids: list[str] = field(default_factory=list)

    @property
    def avg_price(self) -> float | None:
        return self.dollars / self.shares if self.shares > 0 else None


def _import_client() -> Any:
    try:
        import py_clob_client_v2
    except ImportError:
        raise LiveConfigError(
            "live trading needs the live extra: pip install 'stratforge[live]' (py-clob-client-v2)"
        ) from None
    return py_clob_client_v2


def _err(exc: BaseException) -> str:
    """One line naming the error, never a request's headers or body we sent."""
    status = getattr(exc, "status_code", None)
    msg = getattr(exc, "error_msg", None) or getattr(exc, "msg", None) or str(exc)
    if isinstance(msg, dict):
        msg = msg.get("error") or msg.get("errorMsg") or msg
    text = f"{type(exc).__name__}{f' {status}' if status else ''}: {msg}"
    return " ".join(text.split())[:300]


class LiveExecutor:
    """Order placement over a level-2 authenticated ``py_clob_client_v2.ClobClient``."""

    def __init__(
        self,
        client: Any,
        limit_wait_s: float = 3.0,
        poll_s: float = 0.5,
        min_balance: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.limit_wait_s = limit_wait_s
        self.poll_s = poll_s
        self.min_balance = min_balance
        self.clock = clock
        self.sleep = sleep
        self._fees: dict[str, FeeSchedule] = {}

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, host: str | None = None, **kw: Any
    ) -> LiveExecutor:
        """The authenticated client from environment variables; a clear LiveConfigError otherwise."""
        lib = _import_client()
        from py_clob_client_v2.clob_types import ApiCreds

        env = os.environ if env is None else env
        if not env.get("POLYMARKET_PRIVATE_KEY"):
            raise LiveConfigError("live trading needs POLYMARKET_PRIVATE_KEY in the environment")
        try:
            sig = int(env.get("POLYMARKET_SIGNATURE_TYPE", "0"))
        except ValueError:
            sig = -1
        if sig not in SIGNATURE_TYPES:
            names = ", ".join(f"{k} {v}" for k, v in SIGNATURE_TYPES.items())
            raise LiveConfigError(f"POLYMARKET_SIGNATURE_TYPE must be one of {names}")
        funder = env.get("POLYMARKET_FUNDER_ADDRESS") or None
        if sig != 0 and not funder:
            raise LiveConfigError(
                f"signature type {sig} ({SIGNATURE_TYPES[sig]}) needs POLYMARKET_FUNDER_ADDRESS "
                "(the wallet that holds the funds)"
            )
        try:
            from eth_account import Account

            Account.from_key(env["POLYMARKET_PRIVATE_KEY"])
        except Exception:
            raise LiveConfigError("POLYMARKET_PRIVATE_KEY is not a valid private key") from None
        client = lib.ClobClient(
            host or env.get("POLYMARKET_CLOB_URL", CLOB_HOST),
            chain_id=POLYGON,
            key=env["POLYMARKET_PRIVATE_KEY"],
            signature_type=sig,
            funder=funder,
        )
        keys = ("POLY_API_KEY", "POLY_API_SECRET", "POLY_API_PASSPHRASE")
        if all(env.get(k) for k in keys):
            creds = ApiCreds(*(env[k] for k in keys))
        else:
            try:
                creds = client.create_or_derive_api_key()
            except Exception as exc:
                raise LiveConfigError(f"cannot create or derive API credentials: {_err(exc)}") from None
        client.set_api_creds(creds)
        return cls(client, **kw)

    # -- account ------------------------------------------------------------------------------------
    def _collateral(self) -> dict[str, Any]:
        from py_clob_client_v2.clob_types import AssetType, BalanceAllowanceParams

        return (
            self.client.get_balance_allowance(BalanceAllowanceParams(asset_type=AssetType.COLLATERAL)) or {}
        )

    def balance(self) -> float:
        """pUSD balance in dollars."""
        return float(self._collateral().get("balance", 0)) / 10**PUSD_DECIMALS

    def allowance(self) -> float:
        """pUSD the V2 exchange contracts may spend (the smallest over them), in dollars."""
        from py_clob_client_v2.config import get_contract_config

        doc = self._collateral()
        cfg = get_contract_config(POLYGON)
        allowances = {k.lower(): v for k, v in (doc.get("allowances") or {}).items()}
        spenders = [cfg.exchange_v2, cfg.neg_risk_exchange_v2]
        values = [float(allowances.get(s.lower(), 0) or 0) for s in spenders]
        return min(values) / 10**PUSD_DECIMALS

    def check_ready(self, trade_size: float) -> None:
        """Refuse to start unless the credentials work and balance and allowance cover one trade."""
        try:
            bal, allow = self.balance(), self.allowance()
        except Exception as exc:
            status = getattr(exc, "status_code", None)
            if status in (401, 403):
                raise LiveConfigError(
                    f"the venue rejected the API credentials (HTTP {status}); check POLY_API_KEY/"
                    "POLY_API_SECRET/POLY_API_PASSPHRASE or unset them to derive new ones"
                ) from None
            raise LiveConfigError(f"cannot read the pUSD balance: {_err(exc)}") from None
        if bal < trade_size:
            raise LiveConfigError(f"pUSD balance ${bal:.2f} is below one trade (${trade_size:.2f})")
        if allow < trade_size:
            raise LiveConfigError(
                f"pUSD allowance for the CLOB V2 exchange is ${allow:.2f}, below one trade "
                f"(${trade_size:.2f}): approve the exchange contracts for the funder wallet first"
            )

    def token_balance(self, token_id: str) -> float | None:
        """Shares of an outcome token the wallet holds (None when the venue cannot say)."""
        from py_clob_client_v2.clob_types import AssetType, BalanceAllowanceParams

        try:
            doc = self.client.get_balance_allowance(
                BalanceAllowanceParams(asset_type=AssetType.CONDITIONAL, token_id=token_id)
            )
            return float(doc.get("balance", 0)) / 10**PUSD_DECIMALS
        except Exception as exc:
            log.warning("token balance of %s unavailable: %s", token_id, _err(exc))
            return None

    def cancel(self, order_id: str) -> bool:
        from py_clob_client_v2.clob_types import OrderPayload

        try:
            resp = self.client.cancel_order(OrderPayload(orderID=order_id))
        except Exception as exc:
            log.warning("cancel %s failed: %s", order_id, _err(exc))
            return False
        return order_id in (resp or {}).get("canceled", [])

    # -- orders -------------------------------------------------------------------------------------
    def buy(self, token_id: str, dollars: float, worst_price: float) -> OrderResult:
        """Spend ``dollars`` on ``token_id`` paying at most ``worst_price`` per share."""
        try:
            bal = self.balance()
        except Exception as exc:
            return OrderResult(False, "BUY", token_id, dollars, error=f"balance check failed: {_err(exc)}")
        if bal - dollars < self.min_balance:
            return OrderResult(
                False, "BUY", token_id, dollars, error=f"insufficient pUSD balance {bal:.2f} < {dollars:.2f}"
            )
        return self._execute("BUY", token_id, dollars, worst_price)

    def sell(self, token_id: str, shares: float, worst_price: float) -> OrderResult:
        """Sell ``shares`` of ``token_id`` receiving at least ``worst_price`` per share."""
        return self._execute("SELL", token_id, shares, worst_price)

    def _execute(self, side: str, token_id: str, amount: float, price: float) -> OrderResult:
        from py_clob_client_v2.clob_types import MarketOrderArgs, OrderArgs, OrderType

        price = round(min(max(price, 0.01), 0.99), 2)
        errors = []
        try:
            order = self.client.create_market_order(
                MarketOrderArgs(
                    token_id=token_id, amount=amount, side=side, price=price, order_type=OrderType.FOK
                )
            )
            resp = self.client.post_order(order, OrderType.FOK) or {}
            if resp.get("success") and resp.get("orderID"):
                res = self._from_trades(
                    side, token_id, amount, resp["orderID"], resp.get("tradeIDs") or [], "fok"
                )
                if res.shares > 0:
                    return res
            errors.append(
                f"fok: {resp.get('errorMsg') or resp.get('error') or resp.get('status') or 'not filled'}"
            )
        except Exception as exc:
            errors.append(f"fok: {_err(exc)}")
        size = round(amount if side == "SELL" else amount / price, 2)
        try:
            order = self.client.create_order(OrderArgs(token_id=token_id, price=price, size=size, side=side))
            resp = self.client.post_order(order, OrderType.GTC) or {}
            order_id = resp.get("orderID")
            if not resp.get("success") or not order_id:
                raise RuntimeError(resp.get("errorMsg") or resp.get("error") or "limit order rejected")
        except Exception as exc:
            errors.append(f"limit: {_err(exc)}")
            return OrderResult(False, side, token_id, amount, error="; ".join(errors))
        deadline = self.clock() + self.limit_wait_s
        matched = self._matched(order_id)
        while matched + 1e-9 < size and self.clock() < deadline:
            self.sleep(self.poll_s)
            matched = self._matched(order_id)
        if matched + 1e-9 < size:
            self.cancel(order_id)  # the unfilled rest must not linger on the book
        info = self._order(order_id)  # after the cancel: fills that raced it count too
        res = self._from_trades(
            side, token_id, amount, order_id, list(info.get("associate_trades") or []), "limit"
        )
        if res.shares <= 0:
            errors.append("limit: not filled")
            return OrderResult(
                False, side, token_id, amount, order_id=order_id, method="limit", error="; ".join(errors)
            )
        return res

    def _order(self, order_id: str) -> dict[str, Any]:
        try:
            return self.client.get_order(order_id) or {}
        except Exception as exc:
            log.warning("get_order %s failed: %s", order_id, _err(exc))
            return {}

    def _matched(self, order_id: str) -> float:
        return float(self._order(order_id).get("size_matched") or 0.0)

    def _from_trades(
        self, side: str, token_id: str, amount: float, order_id: str, trade_ids: list[str], method: str
    ) -> OrderResult:
        """Shares, USDC and fee of ``order_id`` from its matched trades (FAILED trades excluded)."""
        from py_clob_client_v2.clob_types import TradeParams

        res = OrderResult(False, side, token_id, amount, order_id=order_id, method=method)
        for tid in dict.fromkeys(trade_ids):
            try:
                trades = self.client.get_trades(TradeParams(id=tid), only_first_page=True)
            except Exception as exc:
                res.error = f"trade {tid} unavailable: {_err(exc)}"
                continue
            for tr in trades:
                if tr.get("id") != tid or str(tr.get("status", "")).upper() == FAILED:
                    continue
                res.trade_ids.append(tid)
                for shares, px, taker in _our_fills(tr, order_id):
                    res.shares += shares
                    res.dollars += shares * px
                    if taker:  # V2: takers pay, makers do not
                        fees = self._schedule(str(tr.get("market", "")))
                        if side == "BUY":
                            res.fee_shares += fees.fee_shares(shares, px)
                        else:
                            res.fee_usdc += fees.fee_usdc(shares, px)
        res.ok = res.shares > 0
        return res

    def _schedule(self, condition_id: str) -> FeeSchedule:
        """The market's fee schedule from its CLOB V2 market info (``fd``), cached."""
        if condition_id not in self._fees:
            try:
                info = self.client.get_clob_market_info(condition_id)
                self._fees[condition_id] = schedule_from_metadata(info) or CRYPTO_FEES_V2
            except Exception as exc:
                log.warning("fee schedule of %s unavailable (%s); using the default", condition_id, _err(exc))
                return CRYPTO_FEES_V2
        return self._fees[condition_id]


def _our_fills(trade: dict[str, Any], order_id: str) -> list[tuple[float, float, bool]]:
    """(shares, price, we were the taker) of ``order_id`` in one trade."""
    makers = trade.get("maker_orders") or []
    if trade.get("taker_order_id") == order_id:
        if makers:
            return [(float(m["matched_amount"]), float(m["price"]), True) for m in makers]
        return [(float(trade["size"]), float(trade["price"]), True)]
    return [
        (float(m["matched_amount"]), float(m["price"]), False)
        for m in makers
        if m.get("order_id") == order_id
    ]


class LiveExecution:
    """The :class:`~stratforge.trader.execution.Execution` of live trading: the engine's orders as
    venue orders (worst price = best price -/+ ``slippage``), fills as the matched trades report."""

    name = "live"

    def __init__(self, executor: LiveExecutor, slippage: float = 0.03) -> None:
        self.executor = executor
        self.slippage = slippage

    def buy(self, market: MarketInfo, side: str, usd: float, up_book: OrderBook, now: float) -> Fill:
        ask = (up_book if side == UP else up_book.complement()).best_ask()
        if ask is None:
            return Fill(market.condition_id, side, "BUY", now, unfilled=usd, rejected="empty book")
        token_id = market.up_token if side == UP else market.down_token
        res = self.executor.buy(token_id, usd, worst_price=min(ask + self.slippage, 0.99))
        if not res.ok:
            return Fill(
                market.condition_id, side, "BUY", now, unfilled=usd, rejected=res.error or "buy failed"
            )
        return Fill(
            market.condition_id, side, "BUY", now,
            shares=res.shares - res.fee_shares, shares_traded=res.shares, notional=res.dollars,
            fee_shares=res.fee_shares, unfilled=max(usd - res.dollars, 0.0),
        )  # fmt: skip

    def sell(self, pos: Position, up_book: OrderBook, now: float) -> Fill:
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
            pos.condition_id, pos.side, "SELL", now,
            shares=res.shares, shares_traded=res.shares, notional=res.dollars, fee=res.fee_usdc,
            unfilled=max(pos.shares - res.shares, 0.0),
        )  # fmt: skip

    def settle(self, pos: Position, up_wins: bool, now: float) -> Redemption:
        """Losing tokens are worthless; winning ones pay 1 pUSD each once redeemed on-chain (the CTF
        ``redeemPositions`` call, which the CLOB API does not offer): reported as pending."""
        if (pos.side == UP) != up_wins:
            return Redemption(LOST)
        held = self.executor.token_balance(pos.token_id)
        detail = "redeem on polymarket.com or with the CTF contract's redeemPositions"
        if held is not None:
            detail = f"wallet holds {held:.2f} shares; {detail}"
        return Redemption(PENDING, detail)
