"""Storage: migrations on open, boundary validation, atomic trade + checkpoint writes, both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from stratforge.trader.storage import StorageValueError, Store

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def _trade_fields(session_id: str, key: str = "m1@0", trade_id: str = "t-1", shares: float = 10.0) -> dict:
    return dict(
        id=trade_id,
        session_id=session_id,
        trade_key=key,
        condition_id="0xabc",
        asset="BTC",
        side="UP",
        entry_time=T0,
        entry_price=0.52,
        size_dollars=0.52 * shares,
        shares=shares,
        entry_fee=0.1,
        action_probs={"hold": 0.2, "buy": 0.7, "sell": 0.1},
        market_state={"features": [0.1] * 18},
    )


def _exit(seconds: float, pnl: float, shares: float, reason: str = "take_profit") -> dict:
    return dict(
        exit_time=T0 + timedelta(seconds=seconds),
        exit_price=0.9,
        exit_fee=0.05,
        exit_reason=reason,
        pnl=pnl,
        shares=shares,
        duration_seconds=seconds,
    )


def _metric(pnl: float, trades: int) -> dict:
    return dict(cumulative_pnl=pnl, daily_pnl=pnl, trades_total=trades, open_positions=1, exposure=5.2)


def _exercise(store: Store) -> None:
    """The worker's write path, Store.commit_tick: one transaction per tick, partial fills included."""
    tables = set(inspect(store.engine).get_table_names())
    assert {"sessions", "trades", "metrics", "alerts", "health_events", "model_versions"} <= tables
    sess = store.start_session(mode="paper", trade_size=10.0, source="replay.jsonl")

    # Tick 1 opens a position.
    store.commit_tick(sess.id, {"cursor": 5}, opens=[_trade_fields(sess.id)])
    (row,) = store.trades(sess.id)
    assert (row.id, row.status, row.shares) == ("t-1", "open", 10.0)
    assert store.get_session(sess.id).checkpoint_data == {"cursor": 5}

    # A tick that fails part-way (an over-long exit reason, refused at the boundary) writes nothing
    # at all: not its new trade, not its metric, not its checkpoint; the position stays open.
    with pytest.raises(StorageValueError, match="exit_reason is 60 characters"):
        store.commit_tick(
            sess.id,
            {"cursor": 7},
            opens=[_trade_fields(sess.id, key="m2@7", trade_id="t-2")],
            closes=[("t-1", _exit(60, 1.0, 10.0, reason="r" * 60), None)],
            metric=_metric(1.0, 1),
        )
    (row,) = store.trades(sess.id)
    assert row.status == "open" and row.exit_reason is None and row.pnl is None
    assert store.get_session(sess.id).checkpoint_data == {"cursor": 5} and store.metrics(sess.id) == []

    # Tick 2: a partial fill sells 6 of 10 shares; the unsold 4 become a new open trade in the same
    # transaction, with the metric row and the checkpoint.
    rest = _trade_fields(sess.id, key="m1@0/rest@90", trade_id="t-1r", shares=4.0)
    store.commit_tick(
        sess.id, {"cursor": 9}, closes=[("t-1", _exit(90, 2.5, 6.0), rest)], metric=_metric(2.5, 1)
    )
    by_id = {t.id: t for t in store.trades(sess.id)}
    assert by_id["t-1"].status == "closed" and by_id["t-1"].shares == 6.0 and by_id["t-1"].pnl == 2.5
    assert by_id["t-1"].exit_time == T0 + timedelta(seconds=90)  # tz-aware round trip on both backends
    assert by_id["t-1"].action_probs["buy"] == pytest.approx(0.7)
    assert by_id["t-1r"].status == "open" and by_id["t-1r"].shares == 4.0
    got = store.get_session(sess.id)
    assert got.total_pnl == pytest.approx(2.5) and got.trade_count == 1 and got.win_count == 1
    assert got.checkpoint_data == {"cursor": 9}
    assert [m.cumulative_pnl for m in store.metrics(sess.id)] == [2.5]

    # Tick 3 opens and closes within one tick (the open is flushed before the close) and closes the
    # remainder at a loss: totals roll both.
    store.commit_tick(
        sess.id,
        {"cursor": 12},
        opens=[_trade_fields(sess.id, key="m3@12", trade_id="t-3", shares=2.0)],
        closes=[("t-3", _exit(120, 0.0, 2.0, reason="signal"), None), ("t-1r", _exit(120, -1.0, 4.0), None)],
    )
    got = store.get_session(sess.id)
    assert got.total_pnl == pytest.approx(1.5) and got.trade_count == 3 and got.win_count == 1
    assert store.trades(sess.id, status="open") == []

    # Closing a closed trade, or opening the same market/tick twice (crash-replay idempotency), fails
    # the whole tick.
    with pytest.raises(ValueError, match="already closed"):
        store.commit_tick(sess.id, {"cursor": 13}, closes=[("t-1", _exit(130, 1.0, 6.0), None)])
    with pytest.raises(Exception, match="(?i)unique|duplicate"):
        store.commit_tick(sess.id, {"cursor": 13}, opens=[_trade_fields(sess.id, trade_id="t-dup")])
    assert len(store.trades(sess.id)) == 3 and store.get_session(sess.id).checkpoint_data == {"cursor": 12}


def test_sqlite_roundtrip(tmp_path: Path) -> None:
    store = Store(data_dir=tmp_path)
    assert store.url.startswith("sqlite") and (tmp_path / "trader.db").exists()
    _exercise(store)
    # Re-opening runs the migrations again without error and keeps the data.
    again = Store(data_dir=tmp_path)
    assert len(again.trades()) == 3
    with again.engine.connect() as conn:
        assert conn.execute(text("select version_num from alembic_version")).scalar() == "0001"


def test_postgres_roundtrip(pg_url: str) -> None:
    store = Store(url=pg_url)
    assert store.dialect == "postgresql"
    _exercise(store)


def test_database_url_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    assert Store().url == url
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@h:5432/db")
    from stratforge.trader.storage import resolve_url

    assert resolve_url() == "postgresql+psycopg://u:p@h:5432/db"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("side", "LONG", "not one of"),
        ("entry_price", float("nan"), "finite"),
        ("entry_time", datetime(2026, 1, 1), "timezone-aware"),
        ("asset", "A" * 11, "at most 10"),
        ("market_state", {"x": float("inf")}, "strict JSON"),
        ("condition_id", None, "required"),
    ],
)
def test_validation_rejects(tmp_path: Path, field: str, value: object, message: str) -> None:
    store = Store(data_dir=tmp_path)
    sess = store.start_session(mode="paper")
    fields = _trade_fields(sess.id)
    fields[field] = value
    with pytest.raises(StorageValueError, match=message):
        store.commit_tick(sess.id, {"cursor": 1}, opens=[fields])
    assert store.trades() == [] and store.get_session(sess.id).checkpoint_data is None


def test_alert_and_health_rows(tmp_path: Path) -> None:
    store = Store(data_dir=tmp_path)
    alert = store.record_alert(alert_type="trade_open", payload={"a": 1})
    store.update_alert(alert.id, status="sent", attempts=1, http_status=204)
    (row,) = store.alerts()
    assert (row.status, row.attempts, row.http_status) == ("sent", 1, 204)
    with pytest.raises(StorageValueError):
        store.update_alert(alert.id, status="lost")
    store.record_health("feed", "stale book", level="warning")
    assert [e.message for e in store.health_events()] == ["stale book"]
