"""Health server: real HTTP requests, Prometheus format, and a headless-Chromium screenshot."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from stratforge.trader.health import HealthServer, Snapshot

NOW = 1_767_603_600.0  # the servers' fixed clock: staleness never depends on how long a test takes


def _snapshot(**kw) -> Snapshot:
    t0 = 1_767_600_000.0
    curve = [(t0 + 60 * i, 5 * math.sin(i / 6) + 0.3 * i) for i in range(60)]
    base = dict(
        session_id="s-1",
        started_at=NOW - 600,
        last_tick=NOW,
        pnl=curve[-1][1],
        trades=60,
        wins=20,
        exposure=20.0,
        pnl_curve=curve,
        open_positions=[
            {
                "market": "BTC-1767600000",
                "side": "UP",
                "entry_price": 0.51,
                "size_dollars": 10.0,
                "mark": 0.55,
                "age_s": 42,
            }
        ],
        recent_trades=[
            {
                "market": "ETH-1767600000",
                "side": "DOWN",
                "entry_price": 0.4,
                "exit_price": 0.3,
                "pnl": -2.5,
                "exit_reason": "stop_loss",
            }
        ],
        components={"feeds": "ok", "executor": "ok"},
        alerts={"sent": 3, "dropped": 1},
        safety_trips={"stop_loss": 2, "window_end": 5},
    )
    base.update(kw)
    return Snapshot(**base)


@pytest.fixture
def server():
    holder = {"snap": _snapshot()}
    srv = HealthServer(lambda: holder["snap"], port=0, clock=lambda: NOW).start()
    yield srv, holder
    srv.stop()


def test_health_json_and_status_codes(server) -> None:
    srv, holder = server
    r = httpx.get(srv.url + "/health")
    assert r.status_code == 200
    doc = r.json()
    assert doc["status"] == "ok" and doc["open_positions"] == 1 and doc["session_id"] == "s-1"
    assert doc["uptime_s"] == 600
    holder["snap"] = _snapshot(components={"feeds": "stale", "executor": "ok"})
    assert httpx.get(srv.url + "/health").json()["status"] == "degraded"
    holder["snap"] = _snapshot(last_tick=NOW - srv.stale_after)  # at the limit: still ok
    assert httpx.get(srv.url + "/health").json()["status"] == "ok"
    holder["snap"] = _snapshot(last_tick=NOW - srv.stale_after - 1)  # wedged loop
    r = httpx.get(srv.url + "/health")
    assert r.status_code == 503 and r.json()["status"] == "error"
    assert httpx.get(srv.url + "/nope").status_code == 404


def test_prometheus_text_format(server) -> None:
    srv, _ = server
    r = httpx.get(srv.url + "/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"]*",?)*\})? -?[0-9.e+-]+$')
    values = {}
    for line in r.text.splitlines():
        if line.startswith("#"):
            assert re.match(r"^# (HELP|TYPE) stratforge_trader_\w+ .+$", line), line
            continue
        assert sample.match(line), line
        name, value = line.rsplit(" ", 1)
        values[name] = float(value)
    assert values['stratforge_trader_trades_total{mode="paper"}'] == 60
    assert values['stratforge_trader_alerts_total{status="dropped"}'] == 1
    assert values['stratforge_trader_safety_trips_total{rule="stop_loss"}'] == 2
    assert r.text.endswith("\n")


def test_state_endpoint_and_assets(server) -> None:
    srv, _ = server
    state = httpx.get(srv.url + "/api/state").json()
    assert state["summary"]["win_rate"] == pytest.approx(20 / 60)
    assert len(state["pnl_curve"]) == 60 and state["recent_trades"][0]["exit_reason"] == "stop_loss"
    page = httpx.get(srv.url + "/")
    assert page.status_code == 200 and '<canvas id="chart"' in page.text
    assert "drawCurve" in httpx.get(srv.url + "/dashboard.js").text


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="chromium not installed (scripts/install-system-deps.sh)")
def test_dashboard_screenshot_shows_pnl_curve(server, tmp_path: Path) -> None:
    from matplotlib.image import imread

    srv, _ = server
    shot = tmp_path / "dash.png"
    cmd = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        "--window-size=1000,800",
        "--virtual-time-budget=5000",
        f"--screenshot={shot}",
        srv.url + "/",
    ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    assert shot.exists()
    img = imread(str(shot))  # float RGBA/RGB in [0, 1]
    assert img.shape[0] == 800 and img.shape[1] == 1000
    rgb = (img[..., :3] * 255).round().astype(int)
    # Canvas sits at x 20..780, y ~78..378 (16 px padding + heading + summary): look inside it.
    chart = rgb[110:350, 60:740]
    background = (chart == [0x0F, 0x17, 0x2A]).all(axis=-1)
    green = (abs(chart - [0x22, 0xC5, 0x5E]) <= 40).all(axis=-1)
    assert background.mean() > 0.5, "chart background not rendered"
    assert green.sum() > 500, f"PnL curve not drawn ({green.sum()} curve pixels)"
    # The curve spans the chart horizontally (green in most columns), as a line rather than a blob.
    assert green.any(axis=0).mean() > 0.8
