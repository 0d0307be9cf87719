"""SQLAlchemy 2 models of the trader's operational store.

String columns carry explicit lengths and every write is validated against them before it reaches the
database (see :mod:`stratforge.trader.storage.validate`): SQLite would silently store an over-long value
and PostgreSQL would reject the whole insert, and the live fork lost trades to exactly that (a 20-char
``exit_reason`` column).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def _uuid() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware timestamps on every backend (SQLite returns naive values otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    """Declarative base; ``CHOICES`` maps column name -> allowed values (checked before writes)."""

    CHOICES: dict[str, tuple[str, ...]] = {}


class TradingSession(Base):
    """One run of the worker; ``checkpoint_data`` is what crash recovery restores."""

    __tablename__ = "sessions"
    CHOICES = {"mode": ("paper", "live"), "status": ("running", "stopped", "crashed")}

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_uuid)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    mode: Mapped[str] = mapped_column(String(10), default="paper")
    status: Mapped[str] = mapped_column(String(20), default="running")
    trade_size: Mapped[float] = mapped_column(Float, default=50.0)
    model_version: Mapped[str | None] = mapped_column(String(100))
    source: Mapped[str | None] = mapped_column(String(500))  # replay file or "live"
    config: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    total_pnl: Mapped[float] = mapped_column(Float, default=0.0)
    trade_count: Mapped[int] = mapped_column(Integer, default=0)
    win_count: Mapped[int] = mapped_column(Integer, default=0)
    last_checkpoint: Mapped[datetime | None] = mapped_column(UTCDateTime)
    checkpoint_data: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Trade(Base):
    """A position from entry to exit; exit columns stay NULL while it is open."""

    __tablename__ = "trades"
    CHOICES = {"side": ("UP", "DOWN"), "status": ("open", "closed")}
    __table_args__ = (
        UniqueConstraint("session_id", "trade_key", name="uq_trades_session_key"),
        Index("ix_trades_session_status", "session_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_uuid)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    # Deterministic key (market + entry tick) so a replayed tick after a crash cannot open a twin.
    trade_key: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10), default="open")
    condition_id: Mapped[str] = mapped_column(String(100))
    asset: Mapped[str] = mapped_column(String(10))
    side: Mapped[str] = mapped_column(String(4))
    entry_time: Mapped[datetime] = mapped_column(UTCDateTime)
    entry_price: Mapped[float] = mapped_column(Float)
    size_dollars: Mapped[float] = mapped_column(Float)
    shares: Mapped[float] = mapped_column(Float)
    entry_fee: Mapped[float] = mapped_column(Float, default=0.0)
    window_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    exit_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    exit_price: Mapped[float | None] = mapped_column(Float)
    exit_fee: Mapped[float | None] = mapped_column(Float)
    exit_reason: Mapped[str | None] = mapped_column(String(40))
    pnl: Mapped[float | None] = mapped_column(Float)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    action_probs: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    market_state: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Metric(Base):
    """Periodic performance snapshot (feeds the dashboard's PnL curve)."""

    __tablename__ = "metrics"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), index=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    cumulative_pnl: Mapped[float] = mapped_column(Float, default=0.0)
    daily_pnl: Mapped[float] = mapped_column(Float, default=0.0)
    trades_total: Mapped[int] = mapped_column(Integer, default=0)
    win_rate: Mapped[float | None] = mapped_column(Float)
    open_positions: Mapped[int] = mapped_column(Integer, default=0)
    exposure: Mapped[float] = mapped_column(Float, default=0.0)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Alert(Base):
    """Every alert the worker raised and what happened to it (sent, failed, rate limited, dropped)."""

    __tablename__ = "alerts"
    CHOICES = {"status": ("queued", "sent", "failed", "rate_limited", "dropped", "disabled")}

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str | None] = mapped_column(ForeignKey("sessions.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    alert_type: Mapped[str] = mapped_column(String(30), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    http_status: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(1000))


class HealthEvent(Base):
    """State changes of components (feeds, executor, safety) for post-mortems."""

    __tablename__ = "health_events"
    CHOICES = {"level": ("info", "warning", "error", "critical")}

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str | None] = mapped_column(ForeignKey("sessions.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    component: Mapped[str] = mapped_column(String(50))
    level: Mapped[str] = mapped_column(String(10), default="info")
    message: Mapped[str] = mapped_column(String(1000))
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ModelVersion(Base):
    """A model imported into the registry; files are copied and hashed so rollback is exact."""

    __tablename__ = "model_versions"
    CHOICES = {"status": ("available", "active", "retired")}

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    source_path: Mapped[str] = mapped_column(String(1000))
    stored_path: Mapped[str] = mapped_column(String(1000))
    weights_sha256: Mapped[str] = mapped_column(String(64))
    stats_sha256: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default="available")
    promoted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    notes: Mapped[str | None] = mapped_column(String(1000))
