"""The CLOB V2 executor with the real py-clob-client-v2 against a local CLOB V2 server (signed V2
orders, L1/L2 auth, fills from the matched trades)."""

from __future__ import annotations

import json
import sys

import pytest

from trader_ops.clob_v2 import API_KEY, API_PASSPHRASE, API_SECRET, FakeClobV2, Market
from trader_ops.httpserver import LocalServer

pytest.importorskip("py_clob_client_v2")
from eth_account import Account  # noqa: E402  (py-clob-client-v2 dependency)

from stratforge.trader.fees import FeeSchedule  # noqa: E402
from stratforge.trader.live.executor import LiveConfigError, LiveExecutor  # noqa: E402

UP = "7132101448375021436681497447349152366423536119428765317215213453781273406"
DOWN = "3895513211837012431212338392111244839817720812217001832212341112093387201"
CID = "0x5f0c8a1e6c1b3f0bbd2a7d6b2b8f3c3a9a7f1e2d4c5b6a798812736455463728"


def market(asks=((0.51, 10.0), (0.52, 100.0)), bids=((0.49, 30.0), (0.48, 100.0))) -> Market:
    m = Market(CID, UP, DOWN, "btc-updown-15m-1767600000")
    m.asks[UP] = [list(lv) for lv in asks]
    m.bids[UP] = [list(lv) for lv in bids]
    return m


def env(url: str, sig: int = 0, creds: bool = True, **extra: str) -> dict[str, str]:
    key = Account.create().key.hex()
    out = {
        "POLYMARKET_PRIVATE_KEY": key,
        "POLYMARKET_SIGNATURE_TYPE": str(sig),
        "POLYMARKET_CLOB_URL": url,
    }
    if sig != 0:
        out["POLYMARKET_FUNDER_ADDRESS"] = Account.create().address
    if creds:
        out |= {"POLY_API_KEY": API_KEY, "POLY_API_SECRET": API_SECRET, "POLY_API_PASSPHRASE": API_PASSPHRASE}
    return out | extra


def executor(url: str, **kw) -> LiveExecutor:
    return LiveExecutor.from_env(env(url, **kw), limit_wait_s=0.3, poll_s=0.05)


def test_fok_buy_and_sell_fill_at_the_matched_trades() -> None:
    clob = FakeClobV2([market()], balance=50.0)
    with LocalServer(clob) as srv:
        ex = executor(srv.url)
        assert ex.balance() == pytest.approx(50.0)
        buy = ex.buy(UP, 10.0, worst_price=0.55)
        assert buy.ok and buy.method == "fok"
        # 10 shares at 0.51 ($5.10), the rest at 0.52: the matched prices, not the 0.55 limit.
        assert buy.shares == pytest.approx(10 + 4.9 / 0.52, rel=1e-4)
        assert buy.dollars == pytest.approx(10.0, abs=1e-3)
        assert buy.avg_price < 0.52
        fees = FeeSchedule(0.07, 1.0)  # the market's fd
        assert buy.fee_shares == pytest.approx(
            fees.fee_shares(10, 0.51) + fees.fee_shares(4.9 / 0.52, 0.52), rel=1e-3
        )
        assert buy.fee_usdc == 0.0  # buys pay in shares
        sell = ex.sell(UP, 20.0, worst_price=0.40)
        assert sell.ok and sell.shares == pytest.approx(20.0)
        assert sell.dollars == pytest.approx(20 * 0.49)
        assert sell.fee_usdc == pytest.approx(fees.fee_usdc(20, 0.49)) and sell.fee_shares == 0.0
    posted = clob.posted
    assert [d["orderType"] for d in posted] == ["FOK", "FOK"]
    order = posted[0]["order"]
    # The V2 signed order: timestamp/metadata/builder, no nonce/feeRateBps/taker.
    assert {"timestamp", "metadata", "builder", "signature", "signatureType"} <= set(order)
    assert not {"nonce", "feeRateBps", "taker"} & set(order)
    assert posted[0]["owner"] == API_KEY
    assert clob.bad_signatures == 0


@pytest.mark.parametrize("sig", [0, 1, 2, 3])
def test_every_signature_type_signs_a_v2_order(sig: int) -> None:
    clob = FakeClobV2([market()])
    e = env("", sig=sig)
    with LocalServer(clob) as srv:
        e["POLYMARKET_CLOB_URL"] = srv.url
        ex = LiveExecutor.from_env(e)
        assert ex.buy(UP, 5.0, worst_price=0.55).ok
    order = clob.posted[0]["order"]
    signer = Account.from_key(e["POLYMARKET_PRIVATE_KEY"]).address
    assert order["signatureType"] == sig
    assert order["maker"] == (signer if sig == 0 else e["POLYMARKET_FUNDER_ADDRESS"])
    # EIP-1271 deposit wallets sign as the wallet contract itself; the others as the key's address.
    assert order["signer"] == (e["POLYMARKET_FUNDER_ADDRESS"] if sig == 3 else signer)


def test_killed_fok_falls_back_to_limit_then_cancels_rest() -> None:
    clob = FakeClobV2([market(bids=((0.47, 8.0),))])
    with LocalServer(clob) as srv:
        res = executor(srv.url).sell(UP, 20.0, worst_price=0.45)
    assert res.ok and res.method == "limit"
    assert res.shares == pytest.approx(8.0) and res.dollars == pytest.approx(8 * 0.47)  # matched price
    assert clob.cancelled == [res.order_id]  # the unfilled rest does not linger on the book
    assert [d["orderType"] for d in clob.posted] == ["FOK", "GTC"]


def test_failed_sell_is_reported_not_dropped() -> None:
    clob = FakeClobV2([market(bids=())])
    with LocalServer(clob) as srv:
        res = executor(srv.url).sell(UP, 20.0, worst_price=0.45)
    assert not res.ok and res.shares == 0
    assert "fok:" in res.error and "fully filled or killed" in res.error and "not filled" in res.error


def test_insufficient_balance_refuses_without_ordering() -> None:
    clob = FakeClobV2([market()], balance=5.0)
    with LocalServer(clob) as srv:
        res = executor(srv.url).buy(UP, 10.0, 0.55)
    assert not res.ok and "insufficient pUSD balance" in res.error and clob.posted == []


def test_ready_checks_balance_allowance_and_credentials() -> None:
    cases = [
        (FakeClobV2([market()], balance=100.0, allowance=0.0), "allowance"),
        (FakeClobV2([market()], balance=3.0), "balance \\$3.00 is below one trade"),
        (FakeClobV2([market()], reject_auth=True), "rejected the API credentials \\(HTTP 401\\)"),
    ]
    for clob, message in cases:
        with LocalServer(clob) as srv, pytest.raises(LiveConfigError, match=message):
            executor(srv.url).check_ready(10.0)
    with LocalServer(FakeClobV2([market()])) as srv:
        executor(srv.url, creds=False).check_ready(10.0)  # credentials derived through L1 auth


def test_from_env_errors_are_one_line_and_keep_secrets() -> None:
    with pytest.raises(LiveConfigError, match="POLYMARKET_PRIVATE_KEY"):
        LiveExecutor.from_env(env={})
    bad_type = {"POLYMARKET_PRIVATE_KEY": "0x1", "POLYMARKET_SIGNATURE_TYPE": "7"}
    with pytest.raises(LiveConfigError, match="SIGNATURE_TYPE must be one of"):
        LiveExecutor.from_env(env=bad_type)
    with pytest.raises(LiveConfigError, match="needs POLYMARKET_FUNDER_ADDRESS"):
        LiveExecutor.from_env(env={"POLYMARKET_PRIVATE_KEY": "0x1", "POLYMARKET_SIGNATURE_TYPE": "2"})
    secret = "0xnot-a-key-but-secret-material"
    with pytest.raises(LiveConfigError) as info:
        LiveExecutor.from_env(env={"POLYMARKET_PRIVATE_KEY": secret})
    assert "not a valid private key" in str(info.value) and secret not in str(info.value)


def test_missing_extra_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "py_clob_client_v2", None)  # import raises ImportError
    with pytest.raises(LiveConfigError, match=r"pip install 'stratforge\[live\]'"):
        LiveExecutor.from_env(env={"POLYMARKET_PRIVATE_KEY": "0x1"})


def test_posted_body_is_the_v2_json_shape() -> None:
    clob = FakeClobV2([market()])
    with LocalServer(clob) as srv:
        executor(srv.url).buy(UP, 5.0, worst_price=0.55)
        raw = next(r for r in srv.requests if r["path"] == "/order" and r["method"] == "POST")
    doc = json.loads(raw["body"])
    assert set(doc) == {"order", "owner", "orderType", "deferExec", "postOnly"}
    assert doc["order"]["side"] == "BUY" and int(doc["order"]["makerAmount"]) == 5_000_000
