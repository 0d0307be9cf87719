"""One engine: `trader eval`, `trader backtest` and `trader run --mode paper` make the same trades on
the same replay; settlement follows the venue's resolution and flags a futures fallback."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stratforge.trader.evaluation import RunConfig, run_engine
from stratforge.trader.markets.messages import AggTrade, BookSnapshot, MarketInfo, MarketResolved, PriceChange
from stratforge.trader.markets.replay import write_session
from stratforge.trader.markets.session import Session
from stratforge.trader.markets.synthetic import SyntheticConfig, generate_session
from stratforge.trader.model import init_phase5

STRATFORGE = [sys.executable, "-c", "import sys; from stratforge.cli import main; sys.exit(main())"]
KEYS = ("condition_id", "side", "entry_time", "entry_price", "shares", "exit_time", "exit_price",
        "exit_reason", "pnl")  # fmt: skip


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*STRATFORGE, "trader", *args], capture_output=True, text=True, timeout=600)


def _norm(rows: list[dict]) -> list[tuple]:
    out = []
    for r in rows:
        vals = []
        for k in KEYS:
            v = r[k]
            vals.append(round(v, 4) if isinstance(v, float) else v)
        out.append(tuple(vals))
    return sorted(out, key=lambda t: (t[5], t[0], t[2]))


def _store_trades(db: Path) -> list[dict]:
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    rows = con.execute("SELECT * FROM trades WHERE status = 'closed'").fetchall()
    con.close()

    def ts(x: str) -> float:
        d = datetime.fromisoformat(x)
        return (d if d.tzinfo else d.replace(tzinfo=UTC)).timestamp()

    return [dict(r) | {"entry_time": ts(r["entry_time"]), "exit_time": ts(r["exit_time"])} for r in rows]


def test_eval_backtest_and_run_make_identical_trades(tmp_path: Path) -> None:
    replay = tmp_path / "r.jsonl"
    session = generate_session(11, SyntheticConfig(assets=("BTC", "ETH"), n_windows=2, warmup_minutes=15))
    write_session(session, replay, resolutions="venue")
    model = init_phase5(0).save(tmp_path / "model")  # an untrained network trades plenty
    r = cli("backtest", str(replay), "--policy", str(model), "--out", str(tmp_path / "bt.json"))
    assert r.returncode == 0, r.stderr
    bt = json.loads((tmp_path / "bt.json").read_text())["trades"]
    r = cli("eval", "--replay", str(replay), "--model", str(model), "--train-fraction", "0",
            "--out", str(tmp_path / "ev"))  # fmt: skip
    assert r.returncode == 0, r.stderr
    ev = json.loads((tmp_path / "ev" / "eval.json").read_text())["trades"]["model"]
    r = cli("run", "--mode", "paper", "--replay", str(replay), "--model", str(model),
            "--data-dir", str(tmp_path / "data"))  # fmt: skip
    assert r.returncode == 0, r.stderr
    run = _store_trades(tmp_path / "data" / "trader.db")
    assert len(bt) >= 5  # something to compare
    assert _norm(bt) == _norm(ev) == _norm(run)


def _expiring_session(resolved: bool) -> Session:
    """One BTC market whose book empties 200 s before the end: the window-end sell fails, so the
    position is held to settlement. The futures price says UP; the venue says DOWN."""
    t0 = 1_767_225_600.0
    m = MarketInfo("BTC", t0, "0xfeed", "UP7", "DOWN7", strike=100.0)
    msgs = [AggTrade(t0 - 5, "BTCUSDT", 100.0, 1.0, False)]
    msgs += [BookSnapshot(t0 + k, "0xfeed", "UP7", [(0.30, 500.0)], [(0.32, 500.0)]) for k in range(0, 700, 30)]
    msgs.append(PriceChange(t0 + 700, "0xfeed", [("UP7", 0.30, "BUY", 0.0), ("UP7", 0.32, "SELL", 0.0)]))
    msgs.append(AggTrade(t0 + 899, "BTCUSDT", 101.0, 1.0, False))
    if resolved:
        msgs.append(MarketResolved(t0 + 902, "0xfeed", "DOWN7", "Down"))
    return Session([m], msgs, {})


class _BuyOnce:
    name = "model"

    def action_probs(self, features, history, context=None):  # noqa: ANN001, ANN201
        import numpy as np

        out = np.zeros((len(features), 3))
        out[:, 1 if features[0, 12] == 0 else 0] = 1.0  # BUY when flat, then hold
        return out


@pytest.mark.parametrize(("resolved", "source", "won"), [(True, "market_resolved", False),
                                                         (False, "futures_fallback", True)])  # fmt: skip
def test_settlement_uses_the_venue_and_flags_a_futures_fallback(resolved: bool, source: str, won: bool) -> None:
    run = run_engine(_BuyOnce(), _expiring_session(resolved), RunConfig(sizing="fixed"))
    settle = [t for t in run.trades if t["exit_reason"] == "settlement"]
    assert len(settle) == 1 and run.report["open_at_end"] == 0
    assert settle[0]["exit_price"] == (1.0 if won else 0.0)
    assert run.settled_by == {source: 1}
