"""The health/dashboard snapshot of a running worker (served by :mod:`stratforge.trader.health`).

Trades and totals are read from the store, so the snapshot shows only committed state; open positions
and feed health come from the engine and the runner.
"""

from __future__ import annotations

from stratforge.trader.alerts import Alerter
from stratforge.trader.engine import DecisionEngine
from stratforge.trader.health import Snapshot
from stratforge.trader.storage import Store


def build_snapshot(
    engine: DecisionEngine,
    store: Store,
    session_id: str,
    mode: str,
    model_version: str | None = None,
    alerter: Alerter | None = None,
    feeds: dict[str, str] | None = None,
    last_tick: float | None = None,
) -> Snapshot:
    """``feeds`` maps feed name -> ok | stale (replays have none: their feed cannot die);
    ``last_tick`` is the wall-clock time the loop last made progress."""
    sess = store.get_session(session_id)
    closed = store.trades(session_id, status="closed")
    closed.sort(key=lambda t: t.exit_time or t.entry_time)
    curve, total = [], 0.0
    for t in closed:
        total += t.pnl or 0.0
        curve.append(((t.exit_time or t.entry_time).timestamp(), total))
    open_rows = []
    for p in engine.positions:
        book = engine.feed.books.get(p.condition_id)
        open_rows.append(
            {
                "market": p.market.slug,
                "side": p.side,
                "entry_price": p.entry_price,
                "size_dollars": p.cost,
                "mark": None if book is None else p.mark(book.book),
                "age_s": engine.now - p.entry_time,
            }
        )
    recent = [
        {
            "market": t.condition_id,
            "side": t.side,
            "entry_price": t.entry_price,
            "exit_price": t.exit_price,
            "pnl": t.pnl,
            "exit_reason": t.exit_reason,
        }
        for t in reversed(closed[-20:])
    ]
    for row, t in zip(recent, reversed(closed[-20:]), strict=True):
        m = engine.markets.get(t.condition_id)
        if m is not None:
            row["market"] = m.slug
    feeds = feeds or {}
    components = {f"feed:{name}": status for name, status in feeds.items()}
    components["feeds"] = "ok" if all(s == "ok" for s in feeds.values()) else "degraded"
    components["executor"] = "ok" if not engine.failed_exits else "failing_exits"
    return Snapshot(
        mode=mode,
        status="ok",
        session_id=session_id,
        last_tick=last_tick,
        pnl=sess.total_pnl if sess else 0.0,
        trades=sess.trade_count if sess else 0,
        wins=sess.win_count if sess else 0,
        exposure=engine.positions.exposure,
        pnl_curve=curve,
        open_positions=open_rows,
        recent_trades=recent,
        components=components,
        alerts=dict(alerter.outcomes) if alerter else {},
        safety_trips=dict(engine.trips),
        kill_switch=engine.safety.kill_switch_active(),
        model_version=model_version,
    )
