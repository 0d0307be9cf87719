"""Operational storage of the RL trader (SQLite by default, PostgreSQL through ``DATABASE_URL``)."""

from stratforge.trader.storage.models import (
    Alert,
    HealthEvent,
    Metric,
    ModelVersion,
    Trade,
    TradingSession,
)
from stratforge.trader.storage.store import Store, resolve_url
from stratforge.trader.storage.validate import StorageValueError

__all__ = [
    "Alert",
    "HealthEvent",
    "Metric",
    "ModelVersion",
    "StorageValueError",
    "Store",
    "Trade",
    "TradingSession",
    "resolve_url",
]
