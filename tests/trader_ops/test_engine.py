"""The decision engine on its own: the public API backtests and evaluation drive (no store, no I/O)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stratforge.trader.broker import Fill
from stratforge.trader.checkpoint import Checkpoint
from stratforge.trader.engine import DecisionEngine, EngineConfig
from stratforge.trader.env import FeedState
from stratforge.trader.execution import PENDING, PaperExecution, Redemption
from stratforge.trader.features import OrderBook
from stratforge.trader.journal import MemoryJournal
from stratforge.trader.markets.messages import BookSnapshot, MarketInfo, MarketResolved
from stratforge.trader.markets.replay import read_session, write_session
from stratforge.trader.markets.session import Session
from stratforge.trader.markets.synthetic import SyntheticConfig, generate_session
from stratforge.trader.positions import Position
from stratforge.trader.replay_runner import FileSource, SessionSource, replay_ticks, run_replay
from stratforge.trader.safety import Safety, SafetyConfig
from stratforge.trader.storage import Store
from stratforge.trader.worker import WorkerConfig

T0 = 1767600000.0


class AlwaysUp:
    def action_probs(self, features, history=None):
        return np.tile(np.array([0.0, 1.0, 0.0], dtype=np.float32), (len(np.atleast_2d(features)), 1))


class NoBuyers(PaperExecution):
    """Paper fills for buys, but every sell is rejected (a venue without bids for us)."""

    def sell(self, pos: Position, up_book: OrderBook, now: float) -> Fill:
        return Fill(pos.condition_id, pos.side, "SELL", now, unfilled=pos.shares, rejected="no buyer")


class Pending(PaperExecution):
    def settle(self, pos: Position, up_wins: bool, now: float) -> Redemption:
        return Redemption(PENDING, "test")


def engine_for(session: Session, execution=None, **cfg) -> tuple[DecisionEngine, MemoryJournal, FeedState]:
    feed = FeedState(session)
    journal = MemoryJournal()
    engine: DecisionEngine
    safety = Safety(SafetyConfig(**cfg.pop("safety", {})), clock=lambda: engine.now)
    engine = DecisionEngine(
        EngineConfig(**cfg), AlwaysUp(), execution or PaperExecution(), feed, safety, journal, name="t"
    )
    for m in session.markets:
        engine.add_market(m)
    return engine, journal, feed


@pytest.fixture(scope="module")
def two_hours(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("e") / "two.jsonl"
    write_session(generate_session(21, SyntheticConfig(n_windows=5, assets=("BTC", "ETH"))), path)
    return path


def test_engine_with_a_memory_journal_trades_like_the_worker(two_hours: Path, tmp_path: Path) -> None:
    session = read_session(two_hours)
    engine, journal, feed = engine_for(session)
    src = SessionSource(session)
    replay_ticks(engine, feed, src, src.start, 5.0)
    store = Store(data_dir=tmp_path)
    res = run_replay(
        WorkerConfig(replay=two_hours, data_dir=tmp_path, sizing="fixed"), two_hours, AlwaysUp(), store
    )
    stored = sorted(store.trades(res.session_id), key=lambda t: (t.exit_time, t.trade_key))
    mine = sorted(journal.trades, key=lambda pe: (pe[1].time, pe[0].trade_key))
    assert len(mine) == len(stored) > 10
    assert [(p.trade_key, p.side, e.reason) for p, e in mine] == [
        (t.trade_key, t.side, t.exit_reason) for t in stored
    ]
    assert [e.pnl for _, e in mine] == pytest.approx([t.pnl for t in stored])
    assert not engine.positions and res.open_positions == 0  # every position ended at settlement


def test_streamed_file_and_session_in_memory_agree(two_hours: Path) -> None:
    a, ja, fa = engine_for(read_session(two_hours))
    sa = SessionSource(fa.session)
    replay_ticks(a, fa, sa, sa.start, 5.0)
    b, jb, fb = engine_for(Session([], []))
    sb = FileSource(two_hours)
    for m in sb.markets:
        b.add_market(m)
    replay_ticks(b, fb, sb, sb.start, 5.0)
    assert [(p.trade_key, e.reason, round(e.pnl, 9)) for p, e in ja.trades] == [
        (p.trade_key, e.reason, round(e.pnl, 9)) for p, e in jb.trades
    ]


def test_state_stays_bounded_over_many_windows(two_hours: Path) -> None:
    session = read_session(two_hours)
    engine, _, feed = engine_for(session, retire_after_s=1800)
    src = SessionSource(session)
    sizes = []
    replay_ticks(engine, feed, src, src.start, 5.0, on_tick=lambda t: sizes.append(
        (len(engine.markets), len(feed.books), len(engine.histories), len(engine.retired))
    ))  # fmt: skip
    # Two assets: at most the current window's markets (+ ones awaiting their first tick) are kept;
    # retired ids are forgotten after half an hour (two 15-minute windows of two assets).
    assert max(s[2] for s in sizes) <= 2
    assert max(s[3] for s in sizes) <= 2 * 3
    assert sizes[-1][:3] == (0, 0, 0)


def test_failed_sell_keeps_position_and_exposure_until_the_resolution() -> None:
    m = MarketInfo("BTC", T0, "0xc", "up", "down")
    book = BookSnapshot(T0, "0xc", "up", [(0.49, 500.0)], [(0.51, 500.0)])
    session = Session([m], [book])
    engine, journal, feed = engine_for(
        session, NoBuyers(), safety={"close_before_end_s": 180.0}, trade_size=10.0
    )
    feed.advance(T0 + 10)
    engine.tick(T0 + 10)
    (pos,) = list(engine.positions)
    assert engine.positions.exposure == pytest.approx(pos.cost) and pos.cost == pytest.approx(10.0)
    feed.books["0xc"].on_snapshot(BookSnapshot(T0 + 721, "0xc", "up", [(0.49, 500.0)], [(0.51, 500.0)]))
    engine.tick(T0 + 721)  # < 180 s left: the window-end rule tries to sell, the sell fails
    assert list(engine.positions) == [pos] and engine.positions.exposure == pytest.approx(10.0)
    assert journal.problems and "could not close" in journal.problems[0][1]
    engine.tick(T0 + 905)  # window over, no outcome yet: still held, still counted
    assert list(engine.positions) == [pos]
    feed.apply(MarketResolved(T0 + 906, "0xc", "down", "Down"))
    engine.tick(T0 + 910)
    assert not engine.positions and engine.positions.exposure == 0.0
    ((closed, exit),) = journal.trades
    assert closed is pos and exit.reason == "settlement" and exit.price == 0.0 and exit.pnl == -pos.cost
    assert "0xc" not in engine.markets and "0xc" not in feed.books  # retired


def test_pending_redemption_is_reported() -> None:
    m = MarketInfo("BTC", T0, "0xc", "up", "down")
    session = Session([m], [BookSnapshot(T0, "0xc", "up", [(0.49, 500.0)], [(0.51, 500.0)])])
    engine, journal, feed = engine_for(session, Pending())
    feed.advance(T0 + 10)
    engine.tick(T0 + 10)
    engine.resolve("0xc", True, "test")
    engine.tick(T0 + 900)
    ((pos, exit),) = journal.trades
    assert exit.redemption == PENDING and exit.pnl == pytest.approx(pos.shares - pos.cost)
    assert any(c == "settlement" and "pending redemption" in msg for c, msg in journal.problems)


def test_checkpoint_round_trip(two_hours: Path) -> None:
    session = read_session(two_hours)
    engine, _, feed = engine_for(session)
    src = SessionSource(session)
    stop_at = src.start + 2000

    class Stop:
        def is_set(self) -> bool:
            return engine.now >= stop_at

    replay_ticks(engine, feed, src, src.start, 5.0, stop=Stop())  # type: ignore[arg-type]
    saved = Checkpoint(engine.state(), {"last_metric": 1.0}).to_dict()
    again = Checkpoint.from_dict(saved)
    other, _, _ = engine_for(read_session(two_hours))
    n = other.restore(again.engine, [Position(**vars(p)) for p in engine.positions])
    assert n == len(engine.positions)
    assert Checkpoint(other.state(), again.journal).to_dict() == saved


class OneShareAtATime(PaperExecution):
    """Sells fill one share per order (a thin book): every close is a partial fill."""

    def sell(self, pos: Position, up_book: OrderBook, now: float) -> Fill:
        return Fill(pos.condition_id, pos.side, "SELL", now, shares=1.0, shares_traded=1.0,
                    notional=0.5, unfilled=pos.shares - 1.0)  # fmt: skip


def test_many_partial_closes_keep_the_trade_key_short() -> None:
    m = MarketInfo("BTC", T0, "0xc", "up", "down")
    session = Session([m], [BookSnapshot(T0, "0xc", "up", [(0.49, 500.0)], [(0.51, 500.0)])])
    engine, journal, feed = engine_for(session, OneShareAtATime())
    feed.advance(T0 + 10)
    engine.tick(T0 + 10)
    (pos,) = list(engine.positions)
    for k in range(15):
        (held,) = list(engine.positions)
        assert engine.close(held, "signal", T0 + 20 + k)
    (rest,) = list(engine.positions)
    assert rest.trade_key == f"{pos.trade_key}/rest15@{T0 + 34:.3f}"  # not nested 15 times
    assert rest.shares == pytest.approx(pos.shares - 15)
    assert sum(e.shares for _, e in journal.trades) == pytest.approx(15.0)
    # Two partial closes in one tick (a safety exit, then a signal) still give distinct keys.
    assert engine.close(rest, "stop_loss", T0 + 35)
    (second,) = list(engine.positions)
    assert engine.close(second, "signal", T0 + 35)
    (third,) = list(engine.positions)
    assert len({rest.trade_key, second.trade_key, third.trade_key}) == 3
