"""Storage: migrations on open, boundary validation, atomic trade + checkpoint writes, both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from stratforge.trader.storage import StorageValueError, Store

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def _trade_fields(session_id: str, key: str = "m1@0") -> dict:
    return dict(
        session_id=session_id,
        trade_key=key,
        condition_id="0xabc",
        asset="BTC",
        side="UP",
        entry_time=T0,
        entry_price=0.52,
        size_dollars=10.0,
        shares=10.0 / 0.52,
        entry_fee=0.1,
        action_probs={"hold": 0.2, "buy": 0.7, "sell": 0.1},
        market_state={"features": [0.1] * 18},
    )


def _exercise(store: Store) -> None:
    tables = set(inspect(store.engine).get_table_names())
    assert {"sessions", "trades", "metrics", "alerts", "health_events", "model_versions"} <= tables
    sess = store.start_session(mode="paper", trade_size=10.0, source="replay.jsonl")
    trade = store.open_trade(checkpoint={"cursor": 5}, **_trade_fields(sess.id))
    assert store.get_session(sess.id).checkpoint_data == {"cursor": 5}

    # An over-long exit reason is refused before the insert, and the trade stays open and intact.
    with pytest.raises(StorageValueError, match="exit_reason is 60 characters"):
        store.close_trade(trade.id, exit_reason="r" * 60, pnl=1.0, exit_price=0.6, exit_time=T0)
    (row,) = store.trades(sess.id)
    assert row.status == "open" and row.exit_reason is None and row.pnl is None

    closed = store.close_trade(
        trade.id,
        checkpoint={"cursor": 9},
        exit_reason="take_profit",
        pnl=2.5,
        exit_price=0.9,
        exit_fee=0.05,
        exit_time=T0 + timedelta(seconds=90),
    )
    assert closed.status == "closed"
    got = store.get_session(sess.id)
    assert got.total_pnl == pytest.approx(2.5) and got.trade_count == 1 and got.win_count == 1
    assert got.checkpoint_data == {"cursor": 9}
    (row,) = store.trades(sess.id)
    assert row.exit_time == T0 + timedelta(seconds=90)  # tz-aware round trip on both backends
    assert row.action_probs["buy"] == pytest.approx(0.7)
    with pytest.raises(ValueError, match="already closed"):
        store.close_trade(trade.id, pnl=1.0)

    # The same market/tick cannot be opened twice in a session (crash-replay idempotency).
    with pytest.raises(Exception, match="(?i)unique|duplicate"):
        store.open_trade(**_trade_fields(sess.id))
    assert store.count_trades(sess.id) == 1


def test_sqlite_roundtrip(tmp_path: Path) -> None:
    store = Store(data_dir=tmp_path)
    assert store.url.startswith("sqlite") and (tmp_path / "trader.db").exists()
    _exercise(store)
    # Re-opening runs the migrations again without error and keeps the data.
    again = Store(data_dir=tmp_path)
    assert len(again.trades()) == 1
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
        store.open_trade(**fields)
    assert store.trades() == []


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
