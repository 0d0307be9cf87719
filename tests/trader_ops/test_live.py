"""Live adapters against real local servers replaying recorded venue message shapes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import websockets

from stratforge.trader.live.discovery import DiscoveryConfig, discover
from stratforge.trader.live.feeds import BinanceFuturesFeed, ClobMarketFeed, OkxSwapFeed
from stratforge.trader.live.recorder import ReplayWriter, record
from stratforge.trader.markets.messages import AggTrade, BookSnapshot, Kline, PriceChange, from_raw
from trader_ops.httpserver import LocalServer, json_response

FIX = Path(__file__).with_name("fixtures")
T0 = 1767600000


def _lines(name: str) -> list[str]:
    return [ln for ln in (FIX / name).read_text().splitlines() if ln.strip()]


def test_discovery_gamma_then_clob() -> None:
    event = json.loads((FIX / "gamma_event.json").read_text())
    market = json.loads((FIX / "clob_market.json").read_text())

    def responder(method: str, path: str, body: bytes):
        url = urlparse(path)
        if url.path == "/events":
            slug = parse_qs(url.query)["slug"][0]
            return json_response(event if slug == f"btc-updown-15m-{T0}" else [])
        if url.path == f"/markets/{market['condition_id']}":
            return json_response(market)
        return json_response({"error": "not found"}, 404)

    with LocalServer(responder) as srv:
        cfg = DiscoveryConfig(gamma_url=srv.url, clob_url=srv.url, windows_ahead=1)
        found = discover(["BTC", "ETH"], now=T0 + 37.5, config=cfg)
        slugs = [parse_qs(urlparse(r["path"]).query)["slug"][0] for r in srv.requests if "slug=" in r["path"]]
    assert slugs == [
        f"btc-updown-15m-{T0}",
        f"btc-updown-15m-{T0 + 900}",
        f"eth-updown-15m-{T0}",
        f"eth-updown-15m-{T0 + 900}",
    ]
    assert len(found) == 1
    info = found[0]
    assert (info.asset, info.window_start, info.window_end) == ("BTC", T0, T0 + 900)
    assert info.condition_id == market["condition_id"]
    assert info.up_token.startswith("71321") and info.down_token.startswith("38955")
    assert info.slug == f"btc-updown-15m-{T0}"


async def _serve_lines(lines: list[str], seen: list[str], gap: float = 0.0):
    """A websocket server that records what the client sends and replays ``lines`` to it."""

    async def handler(ws):
        seen.append(await ws.recv())  # the subscription

        async def reader():
            async for msg in ws:
                seen.append(msg)

        task = asyncio.create_task(reader())
        try:
            for ln in lines:
                await ws.send(ln)
                await asyncio.sleep(gap)
            await task
        except websockets.ConnectionClosed:
            pass
        finally:
            task.cancel()

    return await websockets.serve(handler, "127.0.0.1", 0)


async def _collect(feed, n: int) -> list[tuple[str, dict]]:
    out = []
    async for item in feed:
        out.append(item)
        if len(out) >= n:
            feed.close()
            break
    return out


async def _first(feed, n: int):
    """The first ``n`` items of ``feed``, then close it."""
    for item in await _collect(feed, n):
        yield item


def test_recording_stops_at_its_duration(tmp_path: Path) -> None:
    async def main():
        server = await _serve_lines([], [])  # subscribes, then never sends anything
        port = server.sockets[0].getsockname()[1]
        writer = ReplayWriter(tmp_path / "rec.jsonl")
        n = await record([ClobMarketFeed(["x"], url=f"ws://127.0.0.1:{port}")], writer, duration_s=0.2)
        writer.close()
        server.close()
        await server.wait_closed()
        return n

    assert asyncio.run(asyncio.wait_for(main(), 120)) == 0
    assert (tmp_path / "rec.jsonl").read_text() == ""


def test_clob_market_feed_book_and_deltas() -> None:
    up = "7132101448375021436681497447349152366423536119428765317215213453781273406"

    async def main():
        seen: list[str] = []
        server = await _serve_lines(_lines("clob_ws.jsonl"), seen, gap=0.15)
        port = server.sockets[0].getsockname()[1]
        feed = ClobMarketFeed([up], url=f"ws://127.0.0.1:{port}", ping_interval=0.05)
        items = await asyncio.wait_for(_collect(feed, 3), 120)
        server.close()
        await server.wait_closed()
        return seen, items

    seen, items = asyncio.run(main())
    assert json.loads(seen[0]) == {"assets_ids": [up], "type": "market", "custom_feature_enabled": True}
    assert "PING" in seen[1:]
    kinds = [raw["event_type"] for _, raw in items]
    assert kinds == ["book", "price_change", "last_trade_price"]  # tick_size_change filtered out
    msgs = [m for src, raw in items for m in from_raw(src, raw)]
    book, change = msgs[0], msgs[1]
    assert isinstance(book, BookSnapshot) and book.bids[0] == (0.50, 95.0) and book.asks[0] == (0.51, 60.0)
    assert isinstance(change, PriceChange) and change.changes[0] == (up, 0.50, "BUY", 0.0)


def test_binance_and_okx_feeds() -> None:
    async def main():
        seen_b: list[str] = []
        seen_o: list[str] = []
        sb = await _serve_lines(_lines("binance_ws.jsonl"), seen_b)
        so = await _serve_lines(_lines("okx_ws.jsonl"), seen_o)
        bport = sb.sockets[0].getsockname()[1]
        oport = so.sockets[0].getsockname()[1]
        # The Binance server here ignores the (absent) subscription message: send one from the test side.
        binance = BinanceFuturesFeed(["BTCUSDT", "ETHUSDT"], url=f"ws://127.0.0.1:{bport}")

        async def _sub(ws):
            await ws.send("{}")

        binance._subscribe = _sub  # type: ignore[method-assign]
        okx = OkxSwapFeed(["BTCUSDT"], url=f"ws://127.0.0.1:{oport}")
        b_items = await asyncio.wait_for(_collect(binance, 3), 120)
        o_items = await asyncio.wait_for(_collect(okx, 2), 120)
        for s in (sb, so):
            s.close()
            await s.wait_closed()
        return binance._connect_url(), b_items, o_items, seen_o

    url, b_items, o_items, seen_o = asyncio.run(main())
    assert url.endswith("/stream?streams=btcusdt@aggTrade/btcusdt@kline_1m/ethusdt@aggTrade/ethusdt@kline_1m")
    msgs = [m for src, raw in b_items for m in from_raw(src, raw)]
    assert isinstance(msgs[0], AggTrade) and msgs[0].buyer_is_maker and msgs[0].price == 91234.5
    assert (
        isinstance(msgs[1], Kline) and msgs[1].closed and msgs[1].quote_volume == pytest.approx(13893120.55)
    )
    assert json.loads(seen_o[0]) == {
        "op": "subscribe",
        "args": [{"channel": "trades", "instId": "BTC-USDT-SWAP"}],
    }
    okx_msgs = [m for src, raw in o_items for m in from_raw(src, raw)]
    assert [(m.symbol, m.price, m.qty, m.buyer_is_maker) for m in okx_msgs] == [
        ("BTCUSDT", 91230.1, 3.0, True),
        ("BTCUSDT", 91231.0, 1.0, False),
    ]


def test_feed_reconnects_after_drop() -> None:
    async def main():
        conns = []

        async def handler(ws):
            conns.append(ws)
            await ws.recv()
            await ws.send(_lines("clob_ws.jsonl")[1])
            await ws.close()  # drop after one message

        server = await websockets.serve(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        feed = ClobMarketFeed(["x"], url=f"ws://127.0.0.1:{port}", max_backoff=0.1)
        items = await asyncio.wait_for(_collect(feed, 2), 120)
        server.close()
        await server.wait_closed()
        return feed.connects, items

    connects, items = asyncio.run(main())
    assert connects >= 2 and len(items) == 2


def test_recorder_writes_replay_lines(tmp_path: Path) -> None:
    async def main():
        server = await _serve_lines(_lines("clob_ws.jsonl"), [])
        port = server.sockets[0].getsockname()[1]
        writer = ReplayWriter(tmp_path / "rec.jsonl")
        # The feed ends after the three recorded lines, so record() returns as soon as they are written;
        # the 120 s duration is only an upper bound (a 1 s recording would lose lines on a busy machine).
        feed = ClobMarketFeed(["x"], url=f"ws://127.0.0.1:{port}")
        n = await record([_first(feed, 3)], writer, duration_s=120)
        writer.close()
        server.close()
        await server.wait_closed()
        return n

    n = asyncio.run(main())
    rows = [json.loads(x) for x in (tmp_path / "rec.jsonl").read_text().splitlines()]
    assert n == 3 == len(rows)
    assert [r["data"]["event_type"] for r in rows] == ["book", "price_change", "last_trade_price"]
    assert all(r["src"] == "polymarket" and r["t"] > 1.7e12 for r in rows)
    # The markets engineer's reader parses what we recorded; a meta market line makes it a session.
    from stratforge.trader.markets.messages import MarketInfo
    from stratforge.trader.markets.replay import ReplayError, iter_messages, read_session

    parsed = [m for _, m in iter_messages(tmp_path / "rec.jsonl")]
    assert [type(m).__name__ for m in parsed] == ["BookSnapshot", "PriceChange", "LastTrade"]
    with pytest.raises(ReplayError, match="no market definitions"):
        read_session(tmp_path / "rec.jsonl")
    info = MarketInfo("BTC", T0, "0xc", "111", "222")
    meta = ReplayWriter(tmp_path / "session.jsonl")
    meta.write_market(info)
    meta.close()
    (tmp_path / "session.jsonl").write_text(
        (tmp_path / "session.jsonl").read_text() + (tmp_path / "rec.jsonl").read_text()
    )
    session = read_session(tmp_path / "session.jsonl")
    assert session.markets == [info]
    assert [type(m).__name__ for m in session.messages] == ["BookSnapshot", "PriceChange", "LastTrade"]


def test_discovery_reads_the_markets_fee_schedule() -> None:
    from stratforge.trader.fees import FeeSchedule

    event = json.loads((FIX / "gamma_event.json").read_text())
    event[0]["markets"][0] |= {
        "feeType": "crypto_fees_v2",
        "feeSchedule": {"rate": 0.07, "exponent": 1, "takerOnly": True, "rebateRate": 0.2},
    }
    market = json.loads((FIX / "clob_market.json").read_text())

    def responder(method: str, path: str, body: bytes):
        url = urlparse(path)
        if url.path == "/events":
            return json_response(event if parse_qs(url.query)["slug"][0] == f"btc-updown-15m-{T0}" else [])
        return json_response(market)

    with LocalServer(responder) as srv:
        cfg = DiscoveryConfig(gamma_url=srv.url, clob_url=srv.url, windows_ahead=0)
        (info,) = discover(["BTC"], now=T0 + 1, config=cfg)
    assert info.fees == FeeSchedule(0.07, 1.0)
