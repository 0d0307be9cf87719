"""Discord webhook alerts that never hold up trading.

``Alerter.send`` only enqueues (bounded queue, never blocks); a background thread posts each alert,
honours HTTP 429 ``Retry-After`` (header or Discord's JSON ``retry_after``), retries transient errors with
backoff, and records every alert's outcome in the store (sent / failed / rate_limited / dropped /
disabled) so nothing disappears silently.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from stratforge.trader.storage import Store

log = logging.getLogger(__name__)

COLORS = {"trade_open": 0x3498DB, "trade_close": 0x2ECC71, "error": 0xE74C3C, "recovery": 0xF1C40F}


@dataclass
class _Item:
    alert_type: str
    payload: dict[str, Any]
    created: float = field(default_factory=time.time)


class Alerter:
    """Background Discord sender; ``webhook_url=None`` records alerts as ``disabled`` without posting."""

    def __init__(
        self,
        webhook_url: str | None,
        store: Store | None = None,
        session_id: str | None = None,
        max_queue: int = 256,
        max_attempts: int = 5,
        max_retry_after: float = 60.0,
        timeout: float = 10.0,
        username: str = "stratforge trader",
    ) -> None:
        self.webhook_url = webhook_url
        self.store = store
        self.session_id = session_id
        self.max_attempts = max_attempts
        self.max_retry_after = max_retry_after
        self.username = username
        self._queue: queue.Queue[_Item | None] = queue.Queue(maxsize=max_queue)
        self._client = httpx.Client(timeout=timeout)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.outcomes: dict[str, int] = {}

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> Alerter:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="alerts", daemon=True)
            self._thread.start()
        return self

    def close(self, timeout: float = 10.0) -> None:
        """Drain what is queued (up to ``timeout``), then stop the thread."""
        if self._thread is not None:
            try:
                self._queue.put(None, timeout=timeout)
            except queue.Full:
                self._stop.set()
            self._thread.join(timeout)
            self._thread = None
        self._client.close()

    # -- producers ------------------------------------------------------------------------------------
    def send(self, alert_type: str, title: str, fields: dict[str, Any] | None = None, text: str = "") -> bool:
        """Queue an alert; returns False (and records it as dropped) when the queue is full."""
        payload = {"title": title, "text": text, "fields": {k: _plain(v) for k, v in (fields or {}).items()}}
        item = _Item(alert_type, payload)
        try:
            self._queue.put_nowait(item)
            return True
        except queue.Full:
            self._record(item, "dropped", 0, None, "alert queue full")
            return False

    def trade_open(self, market: str, side: str, price: float, size: float, probs: Any = None) -> bool:
        return self.send(
            "trade_open", f"OPEN {side} {market}", {"price": price, "size $": size, "probs": probs}
        )

    def trade_close(self, market: str, side: str, pnl: float, reason: str, price: float) -> bool:
        fields = {"pnl $": round(pnl, 4), "reason": reason, "exit price": price}
        return self.send("trade_close", f"CLOSE {side} {market}", fields)

    def daily_summary(self, day: str, pnl: float, trades: int, win_rate: float | None) -> bool:
        fields = {"pnl $": round(pnl, 4), "trades": trades, "win rate": win_rate}
        return self.send("daily_summary", f"Daily summary {day}", fields)

    def error(self, message: str, **context: Any) -> bool:
        return self.send("error", "Error", context, text=message[:1500])

    def recovery(self, message: str, **context: Any) -> bool:
        return self.send("recovery", "Recovered", context, text=message[:1500])

    def milestone(self, message: str, **context: Any) -> bool:
        return self.send("milestone", "Milestone", context, text=message[:1500])

    # -- consumer -------------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            item = self._queue.get()
            if item is None:
                return
            try:
                self._deliver(item)
            except Exception:  # the alert thread must never die; the failure itself is recorded
                log.exception("alert delivery crashed")

    def _deliver(self, item: _Item) -> None:
        if not self.webhook_url:
            self._record(item, "disabled", 0, None, None)
            return
        body = self._embed(item)
        attempts, status, error = 0, None, None
        backoff = 0.5
        while attempts < self.max_attempts and not self._stop.is_set():
            attempts += 1
            try:
                resp = self._client.post(self.webhook_url, json=body)
            except httpx.HTTPError as exc:
                status, error = None, f"{type(exc).__name__}: {exc}"
                time.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            status = resp.status_code
            if 200 <= status < 300:
                self._record(item, "sent", attempts, status, None)
                return
            if status == 429:
                wait = _retry_after(resp)
                error = f"rate limited, retry after {wait:.2f}s"
                if wait > self.max_retry_after:
                    break
                time.sleep(wait)
                continue
            error = f"HTTP {status}: {resp.text[:300]}"
            if status >= 500:
                time.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            break  # other 4xx: the request itself is wrong, retrying cannot help
        outcome = "rate_limited" if status == 429 else "failed"
        self._record(item, outcome, attempts, status, error)

    def _embed(self, item: _Item) -> dict[str, Any]:
        p = item.payload
        embed: dict[str, Any] = {
            "title": p["title"][:256],
            "color": COLORS.get(item.alert_type, 0x95A5A6),
            "timestamp": datetime.fromtimestamp(item.created, UTC).isoformat(),
            "fields": [
                {"name": str(k)[:256], "value": str(v)[:1024], "inline": True} for k, v in p["fields"].items()
            ],
        }
        if p["text"]:
            embed["description"] = p["text"]
        return {"username": self.username, "embeds": [embed]}

    def _record(
        self, item: _Item, status: str, attempts: int, http_status: int | None, error: str | None
    ) -> None:
        self.outcomes[status] = self.outcomes.get(status, 0) + 1
        if self.store is None:
            return
        try:
            self.store.record_alert(
                session_id=self.session_id,
                alert_type=item.alert_type[:30],
                payload=item.payload,
                status=status,
                attempts=attempts,
                http_status=http_status,
                error=error[:1000] if error else None,
            )
        except Exception:
            log.exception("could not record alert outcome")


def _retry_after(resp: httpx.Response) -> float:
    header = resp.headers.get("Retry-After")
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            pass
    try:
        return max(0.0, float(resp.json().get("retry_after", 1.0)))
    except Exception:
        return 1.0


def _plain(value: Any) -> Any:
    """JSON-safe rendering of a field value (floats rounded for readability)."""
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, int | str | bool) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)
