"""Synthetic sessions (determinism, true probability, book shape) and the JSONL replay round trip."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from stratforge.trader.markets.messages import (
    AggTrade,
    BookSnapshot,
    Kline,
    LastTrade,
    PriceChange,
    from_raw,
    to_raw,
)
from stratforge.trader.markets.replay import ReplayError, read_session, write_session
from stratforge.trader.markets.synthetic import SyntheticConfig, generate_session

SMALL = SyntheticConfig(assets=("BTC", "SOL"), warmup_minutes=15)


def test_same_seed_same_session_different_seed_different() -> None:
    a, b, c = generate_session(5, SMALL), generate_session(5, SMALL), generate_session(6, SMALL)
    assert len(a.messages) == len(b.messages)
    assert all(x == y for x, y in zip(a.messages, b.messages, strict=True))
    assert [m.condition_id for m in a.markets] == [m.condition_id for m in b.markets]
    assert [m.strike for m in a.markets] != [m.strike for m in c.markets]


def test_asset_streams_are_independent_of_the_asset_set() -> None:
    both = generate_session(9, SMALL)
    only = generate_session(9, SyntheticConfig(assets=("SOL",), warmup_minutes=15))
    sol = [m for m in both.markets if m.asset == "SOL"][0]
    assert sol.strike == only.markets[0].strike


def test_messages_are_time_ordered_and_well_formed() -> None:
    s = generate_session(1, SMALL)
    ts = [m.ts for m in s.messages]
    assert ts == sorted(ts)
    kinds = {type(m) for m in s.messages}
    assert {AggTrade, BookSnapshot, PriceChange, Kline, LastTrade} <= kinds
    for m in s.messages:
        if isinstance(m, BookSnapshot):
            assert m.bids[0][0] < m.asks[0][0]  # never crossed
            assert all(0 < p < 1 for p, _ in m.bids + m.asks)


def test_true_probability_ends_at_outcome_and_book_lags_it() -> None:
    s = generate_session(2, SyntheticConfig(warmup_minutes=15))
    for m in s.markets:
        times, p = s.truth[m.condition_id]
        res = s.resolutions[m.condition_id]
        assert p[0] == pytest.approx(0.5)  # at the start the spot is the strike
        assert p[-1] == (1.0 if res.up_wins else 0.0)
        assert res.strike == m.strike
        assert np.all((p >= 0) & (p <= 1))


def test_raw_round_trip_of_every_message_type() -> None:
    s = generate_session(3, SMALL)
    seen = set()
    for m in s.messages[:3000]:
        src, raw = to_raw(m)
        back = from_raw(src, json.loads(json.dumps(raw)))
        assert len(back) == 1
        b = back[0]
        assert type(b) is type(m)
        assert b.ts == pytest.approx(m.ts, abs=1e-3)  # venues use milliseconds
        if isinstance(m, AggTrade):
            assert (b.price, b.qty, b.buyer_is_maker) == (m.price, m.qty, m.buyer_is_maker)
        if isinstance(m, BookSnapshot):
            assert (b.bids, b.asks) == (m.bids, m.asks)
        if isinstance(m, PriceChange):
            assert b.changes == m.changes
        seen.add(type(m))
    assert len(seen) >= 4


def test_polymarket_shapes_older_price_change_and_event_arrays() -> None:
    old = {"event_type": "price_change", "asset_id": "A", "market": "M", "timestamp": "1000",
           "changes": [{"price": "0.4", "side": "SELL", "size": "12"}]}  # fmt: skip
    (pc,) = from_raw("polymarket", old)
    assert pc.changes == [("A", 0.4, "SELL", 12.0)] and pc.ts == 1.0
    arr = [{"event_type": "last_trade_price", "asset_id": "A", "market": "M", "price": "0.5",
            "size": "3", "side": "BUY", "timestamp": "2000"}, {"event_type": "tick_size_change"}]  # fmt: skip
    assert len(from_raw("polymarket", arr)) == 1
    wrapped = {"stream": "btcusdt@aggTrade", "data": {"e": "aggTrade", "s": "BTCUSDT", "p": "1", "q": "2",
               "T": 5000, "m": True}}  # fmt: skip
    (tr,) = from_raw("binance", wrapped)
    assert tr.buyer_is_maker and tr.ts == 5.0
    with pytest.raises(ValueError):
        from_raw("polymarket", {"event_type": "book", "bids": []})  # no asset_id


def test_replay_file_round_trip_drives_identical_env(tmp_path) -> None:
    from stratforge.trader.env import EnvConfig, TraderEnv

    s = generate_session(4, SMALL)
    path = tmp_path / "s.jsonl"
    n = write_session(s, path)
    assert n == len(s.messages) + len(s.markets) + len(s.resolutions)
    r = read_session(path)
    assert [m.slug for m in r.markets] == [m.slug for m in s.markets]
    assert {k: (v.strike, v.final) for k, v in r.resolutions.items()} == {
        k: (v.strike, v.final) for k, v in s.resolutions.items()
    }
    e1, e2 = TraderEnv(EnvConfig(), session=s), TraderEnv(EnvConfig(), session=r)
    o1, _ = e1.reset()
    o2, _ = e2.reset()
    rng = np.random.default_rng(0)
    done = False
    while not done:
        assert np.allclose(o1.features, o2.features, atol=1e-5)
        a = rng.choice(3, size=e1.n, p=[0.8, 0.1, 0.1])
        o1, r1, done, _, _ = e1.step(a)
        o2, r2, done2, _, _ = e2.step(a)
        assert np.allclose(r1, r2, atol=1e-6) and done == done2
    assert e1.report()["pnl"] == pytest.approx(e2.report()["pnl"], abs=1e-6)


def test_replay_errors_name_the_line(tmp_path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"t": 1, "src": "meta", "data": {"type": "market"}}\n')
    with pytest.raises(ReplayError, match="bad.jsonl:1"):
        read_session(bad)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(ReplayError, match="no market"):
        read_session(empty)
    with pytest.raises(ReplayError, match="not found"):
        read_session(tmp_path / "missing.jsonl")


def test_replay_without_strike_or_resolution_uses_futures_prices(tmp_path) -> None:
    from stratforge.trader.env import EnvConfig, TraderEnv

    s = generate_session(8, SyntheticConfig(assets=("ETH",), warmup_minutes=15))
    true_res = dict(s.resolutions)
    for m in s.markets:
        m.strike = None
    s.resolutions.clear()
    path = tmp_path / "nostrike.jsonl"
    write_session(s, path, resolutions="none")  # neither the venue's event nor a meta resolution
    env = TraderEnv(EnvConfig(), session=read_session(path))
    env.reset()
    done = False
    while not done:
        _, _, done, _, _ = env.step([0])
    (settled,) = env.settled
    res = next(iter(true_res.values()))
    # the last trade before the window boundary is within a second of the path price
    assert settled["strike"] == pytest.approx(res.strike, rel=2e-3)
    assert settled["final"] == pytest.approx(res.final, rel=2e-3)
    assert math.isfinite(settled["strike"])
    assert settled["resolved_by"] == "futures_fallback"
