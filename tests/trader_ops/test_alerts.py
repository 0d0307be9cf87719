"""Discord alerts against a real local HTTP server: delivery, 429 Retry-After, never blocking."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from stratforge.trader.alerts import Alerter
from stratforge.trader.storage import Store
from trader_ops.httpserver import LocalServer


def test_429_retry_after_is_honoured(tmp_path: Path) -> None:
    calls = {"n": 0}

    def responder(method: str, path: str, body: bytes):
        calls["n"] += 1
        if calls["n"] == 1:
            return 429, {"Retry-After": "0.4", "Content-Type": "application/json"}, b'{"retry_after": 0.4}'
        return 204, {}, b""

    store = Store(data_dir=tmp_path)
    with LocalServer(responder) as srv:
        alerter = Alerter(srv.url + "/hook", store=store).start()
        assert alerter.trade_open("BTC-15m", "UP", 0.52, 10.0, probs=[0.1, 0.8, 0.1])
        alerter.close()
    assert len(srv.requests) == 2
    gap = srv.requests[1]["t"] - srv.requests[0]["t"]
    assert gap >= 0.38, gap
    embed = json.loads(srv.requests[1]["body"])["embeds"][0]
    assert embed["title"] == "OPEN UP BTC-15m"
    assert {f["name"] for f in embed["fields"]} == {"price", "size $", "probs"}
    (row,) = store.alerts()
    assert (row.alert_type, row.status, row.attempts, row.http_status) == ("trade_open", "sent", 2, 204)


def test_send_never_blocks_and_overflow_is_recorded(tmp_path: Path) -> None:
    # The server holds every request until the test releases it. If a send waited for delivery (or for
    # room in the queue) the sender thread could not finish before the release, whatever the machine's
    # speed; the 60 s bound only guards against a hang.
    release = threading.Event()

    def held(method: str, path: str, body: bytes):
        release.wait(120)
        return 204, {}, b""

    store = Store(data_dir=tmp_path)
    results: list[bool] = []
    with LocalServer(held) as srv:
        alerter = Alerter(srv.url, store=store, max_queue=2).start()
        sender = threading.Thread(target=lambda: results.extend(alerter.error(f"boom {i}") for i in range(6)))
        sender.start()
        sender.join(60)
        finished_before_release = not sender.is_alive()
        release.set()
        sender.join()
        alerter.close()
    assert finished_before_release
    # One in flight + two queued are delivered; the rest are recorded as dropped, not lost silently.
    statuses = sorted(a.status for a in store.alerts())
    assert results.count(False) == statuses.count("dropped") >= 1
    assert len(statuses) == 6 and statuses.count("sent") + statuses.count("dropped") == 6


def test_failures_are_recorded(tmp_path: Path) -> None:
    store = Store(data_dir=tmp_path)
    with LocalServer(lambda m, p, b: (400, {}, b"bad embed")) as srv:
        alerter = Alerter(srv.url, store=store).start()
        alerter.milestone("100 trades")
        alerter.close()
    (row,) = store.alerts()
    assert row.status == "failed" and row.attempts == 1 and "bad embed" in row.error
    # Persistent rate limiting beyond the cap gives up and says so.
    hdr = {"Retry-After": "120"}
    with LocalServer(lambda m, p, b: (429, hdr, b"{}")) as srv:
        alerter = Alerter(srv.url, store=store, max_retry_after=5).start()
        alerter.recovery("restored 2 positions")
        alerter.close()
    assert store.alerts("recovery")[0].status == "rate_limited"


def test_disabled_without_url(tmp_path: Path) -> None:
    store = Store(data_dir=tmp_path)
    alerter = Alerter(None, store=store).start()
    alerter.daily_summary("2026-01-05", 12.5, 40, 0.3)
    alerter.close()
    assert [a.status for a in store.alerts()] == ["disabled"]
