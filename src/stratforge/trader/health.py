"""Health, Prometheus metrics and the dashboard over plain HTTP.

``GET /health`` JSON (503 when unhealthy, so Docker/Fly health checks restart a wedged worker),
``GET /metrics`` Prometheus text exposition format 0.0.4, ``GET /api/state`` the dashboard's JSON, and
``GET /`` the dashboard page itself (static assets in ``stratforge/trader/dashboard``).

The server reads a :class:`Snapshot` from a provider callable on every request, so it never holds
locks of the trading loop.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

log = logging.getLogger(__name__)

ASSETS = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/dashboard.js": ("dashboard.js", "text/javascript"),
}


@dataclass
class Snapshot:
    """Everything the endpoints render; built by the worker (or from the store) on demand."""

    mode: str = "paper"
    status: str = "ok"  # ok | degraded | error
    session_id: str | None = None
    started_at: float = field(default_factory=time.time)
    last_tick: float | None = None  # wall-clock time the loop last made progress
    pnl: float = 0.0
    trades: int = 0
    wins: int = 0
    exposure: float = 0.0
    pnl_curve: list[tuple[float, float]] = field(default_factory=list)
    open_positions: list[dict[str, Any]] = field(default_factory=list)
    recent_trades: list[dict[str, Any]] = field(default_factory=list)
    components: dict[str, str] = field(default_factory=dict)  # e.g. {"feeds": "ok", "executor": "ok"}
    alerts: dict[str, int] = field(default_factory=dict)  # outcome -> count
    safety_trips: dict[str, int] = field(default_factory=dict)  # rule -> count
    kill_switch: bool = False
    model_version: str | None = None


class HealthServer:
    """Threaded HTTP server; ``stale_after`` seconds without a tick makes /health report ``error``."""

    def __init__(
        self,
        provider: Callable[[], Snapshot],
        host: str = "127.0.0.1",
        port: int = 8080,
        stale_after: float = 120.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.provider = provider
        self.stale_after = stale_after
        self.clock = clock  # wall clock; tests pass a fixed one so staleness never depends on speed
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                try:
                    status, ctype, body = server.route(path)
                except Exception as exc:  # a broken provider must not kill the server thread
                    log.exception("health endpoint failed")
                    status, ctype, body = 500, "application/json", json.dumps({"error": str(exc)}).encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self.url = f"http://{host}:{self.port}"
        self._thread: threading.Thread | None = None

    def start(self) -> HealthServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="health", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- routing --------------------------------------------------------------------------------------
    def route(self, path: str) -> tuple[int, str, bytes]:
        if path in ASSETS:
            name, ctype = ASSETS[path]
            body = resources.files("stratforge.trader.dashboard").joinpath(name).read_bytes()
            return 200, ctype, body
        snap = self.provider()
        if path == "/health":
            doc = self.health_doc(snap)
            code = 503 if doc["status"] == "error" else 200
            return code, "application/json", json.dumps(doc).encode()
        if path == "/metrics":
            return 200, "text/plain; version=0.0.4; charset=utf-8", prometheus_text(snap).encode()
        if path == "/api/state":
            return 200, "application/json", json.dumps(state_doc(snap)).encode()
        return 404, "application/json", b'{"error": "not found"}'

    def health_doc(self, snap: Snapshot) -> dict[str, Any]:
        now = self.clock()
        age = None if snap.last_tick is None else now - snap.last_tick
        status = snap.status
        if age is not None and age > self.stale_after:
            status = "error"
        elif any(v != "ok" for v in snap.components.values()) and status == "ok":
            status = "degraded"
        return {
            "status": status,
            "mode": snap.mode,
            "session_id": snap.session_id,
            "uptime_s": round(now - snap.started_at, 3),
            "last_tick_age_s": None if age is None else round(age, 3),
            "open_positions": len(snap.open_positions),
            "kill_switch": snap.kill_switch,
            "components": snap.components,
            "model_version": snap.model_version,
        }


def state_doc(snap: Snapshot) -> dict[str, Any]:
    """The dashboard's JSON: summary numbers, PnL curve, open positions and recent trades."""
    doc = asdict(snap)
    doc["summary"] = {
        "pnl": snap.pnl,
        "trades": snap.trades,
        "win_rate": (snap.wins / snap.trades) if snap.trades else None,
        "open_positions": len(snap.open_positions),
        "exposure": snap.exposure,
    }
    doc["pnl_curve"] = [[float(t), float(v)] for t, v in snap.pnl_curve]
    return doc


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus_text(snap: Snapshot) -> str:
    """Prometheus text exposition (HELP/TYPE lines, one sample per line, trailing newline)."""
    lines: list[str] = []

    def metric(name: str, kind: str, help_: str, samples: list[tuple[dict[str, str], float]]) -> None:
        lines.append(f"# HELP {name} {help_}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            lab = ",".join(f'{k}="{_esc(v)}"' for k, v in sorted(labels.items()))
            lines.append(f"{name}{{{lab}}} {float(value)!r}" if lab else f"{name} {float(value)!r}")

    mode = {"mode": snap.mode}
    metric(
        "stratforge_trader_up",
        "gauge",
        "1 while the worker reports healthy.",
        [(mode, snap.status != "error")],
    )
    metric(
        "stratforge_trader_pnl_dollars", "gauge", "Realized PnL of the session in USDC.", [(mode, snap.pnl)]
    )
    metric(
        "stratforge_trader_trades_total", "counter", "Closed trades in the session.", [(mode, snap.trades)]
    )
    metric("stratforge_trader_wins_total", "counter", "Closed trades with positive PnL.", [(mode, snap.wins)])
    metric(
        "stratforge_trader_open_positions",
        "gauge",
        "Currently open positions.",
        [(mode, len(snap.open_positions))],
    )
    metric(
        "stratforge_trader_exposure_dollars",
        "gauge",
        "Cost basis of open positions.",
        [(mode, snap.exposure)],
    )
    if snap.last_tick is not None:
        metric(
            "stratforge_trader_last_tick_age_seconds",
            "gauge",
            "Seconds since the trading loop last made progress.",
            [(mode, max(0.0, time.time() - snap.last_tick))],
        )
    metric(
        "stratforge_trader_kill_switch",
        "gauge",
        "1 while the kill switch blocks entries.",
        [(mode, snap.kill_switch)],
    )
    metric(
        "stratforge_trader_alerts_total",
        "counter",
        "Alerts by delivery outcome.",
        [({"status": k}, v) for k, v in sorted(snap.alerts.items())],
    )
    metric(
        "stratforge_trader_safety_trips_total",
        "counter",
        "Safety rule activations by rule.",
        [({"rule": k}, v) for k, v in sorted(snap.safety_trips.items())],
    )
    return "\n".join(lines) + "\n"
