"""The live executor with the real py-clob-client against a local CLOB server (signed orders, L2 auth)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlparse

import pytest

from trader_ops.httpserver import LocalServer, json_response

pytest.importorskip("py_clob_client")
from eth_account import Account  # noqa: E402  (py-clob-client dependency)
from py_clob_client.client import ClobClient  # noqa: E402
from py_clob_client.clob_types import ApiCreds  # noqa: E402

from stratforge.trader.live.executor import LiveExecutor  # noqa: E402

TOKEN = "7132101448375021436681497447349152366423536119428765317215213453781273406"


class FakeClob:
    """Just enough of the CLOB REST API: tick size, neg risk, fee rate, orders, cancel, balance."""

    def __init__(self, fok_fills: bool = True, limit_fill: float = 1.0, balance: float = 100.0) -> None:
        self.fok_fills = fok_fills
        self.limit_fill = limit_fill
        self.balance = balance
        self.orders: dict[str, dict] = {}
        self.cancelled: list[str] = []
        self.auth_headers: list[dict] = []

    def __call__(self, method: str, path: str, body: bytes):
        url = urlparse(path)
        q = parse_qs(url.query)
        if url.path == "/tick-size":
            return json_response({"minimum_tick_size": 0.01})
        if url.path == "/neg-risk":
            return json_response({"neg_risk": False})
        if url.path == "/fee-rate":
            return json_response({"base_fee": 0})
        if url.path == "/balance-allowance":
            assert q["asset_type"] == ["COLLATERAL"]
            return json_response({"balance": str(int(self.balance * 1e6)), "allowances": {}})
        if url.path == "/order" and method == "POST":
            doc = json.loads(body)
            o = doc["order"]
            maker, taker = int(o["makerAmount"]) / 1e6, int(o["takerAmount"]) / 1e6
            shares, price = (taker, maker / taker) if o["side"] == "BUY" else (maker, taker / maker)
            oid = f"0x{len(self.orders) + 1:064x}"
            if doc["orderType"] == "FOK":
                if not self.fok_fills:
                    return json_response(
                        {"error": "order couldn't be fully filled. FOK orders are fully filled or killed."},
                        400,
                    )
                self.orders[oid] = dict(
                    status="MATCHED", size=shares, matched=shares, price=price, side=o["side"]
                )
                return json_response({"success": True, "orderID": oid, "status": "matched", "errorMsg": ""})
            matched = round(shares * self.limit_fill, 2)
            status = "MATCHED" if matched >= shares else "LIVE"
            self.orders[oid] = dict(status=status, size=shares, matched=matched, price=price, side=o["side"])
            return json_response({"success": True, "orderID": oid, "status": status.lower(), "errorMsg": ""})
        if url.path.startswith("/data/order/"):
            o = self.orders[url.path.rsplit("/", 1)[1]]
            return json_response(
                {
                    "status": o["status"],
                    "size_matched": str(o["matched"]),
                    "original_size": str(o["size"]),
                    "price": str(o["price"]),
                }
            )
        if url.path == "/order" and method == "DELETE":
            oid = json.loads(body)["orderID"] if body else None
            self.cancelled.append(oid)
            if oid in self.orders:
                self.orders[oid]["status"] = "CANCELED"
            return json_response({"canceled": [oid], "not_canceled": {}})
        return json_response({"error": f"unexpected {method} {path}"}, 404)


def _executor(url: str) -> LiveExecutor:
    key = Account.create().key.hex()
    client = ClobClient(url, chain_id=137, key=key, signature_type=0, funder=Account.from_key(key).address)
    client.set_api_creds(ApiCreds("k", "c2VjcmV0c2VjcmV0c2VjcmV0", "p"))
    return LiveExecutor(client, limit_wait_s=0.3, poll_s=0.05)


def test_fok_buy_and_sell_fill_verified() -> None:
    clob = FakeClob(balance=50.0)
    with LocalServer(clob) as srv:
        ex = _executor(srv.url)
        assert ex.balance() == pytest.approx(50.0)
        res = ex.buy(TOKEN, 10.0, worst_price=0.55)
        assert res.ok and res.method == "fok" and res.shares > 0
        assert res.avg_price == pytest.approx(0.55, abs=0.01)
        sell = ex.sell(TOKEN, res.shares, worst_price=0.40)
        assert sell.ok and sell.shares == pytest.approx(res.shares, rel=1e-3)
        posted = [r for r in srv.requests if r["path"] == "/order" and r["method"] == "POST"]
    assert [json.loads(r["body"])["orderType"] for r in posted] == ["FOK", "FOK"]
    assert all("POLY_SIGNATURE" in {k.upper() for k in r["headers"]} for r in posted)


def test_insufficient_balance_refuses_without_ordering() -> None:
    clob = FakeClob(balance=5.0)
    with LocalServer(clob) as srv:
        res = _executor(srv.url).buy(TOKEN, 10.0, 0.5)
    assert not res.ok and "insufficient balance" in res.error and clob.orders == {}


def test_killed_fok_falls_back_to_limit_then_cancels_rest() -> None:
    clob = FakeClob(fok_fills=False, limit_fill=0.5)
    with LocalServer(clob) as srv:
        res = _executor(srv.url).sell(TOKEN, 20.0, worst_price=0.45)
    assert res.ok and res.method == "limit" and res.partial
    assert res.shares == pytest.approx(10.0)
    assert clob.cancelled == [res.order_id]  # the unfilled rest does not linger on the book


def test_failed_sell_is_reported_not_dropped() -> None:
    clob = FakeClob(fok_fills=False, limit_fill=0.0)
    with LocalServer(clob) as srv:
        res = _executor(srv.url).sell(TOKEN, 20.0, worst_price=0.45)
    assert not res.ok and res.shares == 0
    assert "fok:" in res.error and "not filled" in res.error


def test_from_env_requires_credentials() -> None:
    with pytest.raises(RuntimeError, match="POLYMARKET_PRIVATE_KEY"):
        LiveExecutor.from_env(env={})
    with pytest.raises(RuntimeError, match="SIGNATURE_TYPE"):
        LiveExecutor.from_env(
            env={
                "POLYMARKET_PRIVATE_KEY": "0x1",
                "POLYMARKET_FUNDER_ADDRESS": "0x2",
                "POLYMARKET_SIGNATURE_TYPE": "7",
            }
        )
