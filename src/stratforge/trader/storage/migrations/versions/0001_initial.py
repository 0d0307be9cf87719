"""Initial schema: sessions, trades, metrics, alerts, health events, model versions.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(36), primary_key=True),
        _ts("started_at", False),
        _ts("ended_at"),
        sa.Column("mode", sa.String(10), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("trade_size", sa.Float, nullable=False),
        sa.Column("model_version", sa.String(100)),
        sa.Column("source", sa.String(500)),
        sa.Column("config", sa.JSON),
        sa.Column("total_pnl", sa.Float, nullable=False),
        sa.Column("trade_count", sa.Integer, nullable=False),
        sa.Column("win_count", sa.Integer, nullable=False),
        _ts("last_checkpoint"),
        sa.Column("checkpoint_data", sa.JSON),
        sa.CheckConstraint("mode IN ('paper', 'live')", name="ck_sessions_mode"),
    )
    op.create_table(
        "trades",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "session_id", sa.String(36), sa.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("trade_key", sa.String(200), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("condition_id", sa.String(100), nullable=False),
        sa.Column("asset", sa.String(10), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        _ts("entry_time", False),
        sa.Column("entry_price", sa.Float, nullable=False),
        sa.Column("size_dollars", sa.Float, nullable=False),
        sa.Column("shares", sa.Float, nullable=False),
        sa.Column("entry_fee", sa.Float, nullable=False),
        _ts("window_end"),
        _ts("exit_time"),
        sa.Column("exit_price", sa.Float),
        sa.Column("exit_fee", sa.Float),
        sa.Column("exit_reason", sa.String(40)),
        sa.Column("pnl", sa.Float),
        sa.Column("duration_seconds", sa.Float),
        sa.Column("action_probs", sa.JSON),
        sa.Column("market_state", sa.JSON),
        sa.UniqueConstraint("session_id", "trade_key", name="uq_trades_session_key"),
        sa.CheckConstraint("side IN ('UP', 'DOWN')", name="ck_trades_side"),
    )
    op.create_index("ix_trades_session_status", "trades", ["session_id", "status"])
    op.create_table(
        "metrics",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "session_id", sa.String(36), sa.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False
        ),
        _ts("recorded_at", False),
        sa.Column("cumulative_pnl", sa.Float, nullable=False),
        sa.Column("daily_pnl", sa.Float, nullable=False),
        sa.Column("trades_total", sa.Integer, nullable=False),
        sa.Column("win_rate", sa.Float),
        sa.Column("open_positions", sa.Integer, nullable=False),
        sa.Column("exposure", sa.Float, nullable=False),
        sa.Column("data", sa.JSON),
    )
    op.create_index("ix_metrics_session_id", "metrics", ["session_id"])
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("session_id", sa.String(36), sa.ForeignKey("sessions.id", ondelete="SET NULL")),
        _ts("created_at", False),
        sa.Column("alert_type", sa.String(30), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("http_status", sa.Integer),
        sa.Column("error", sa.String(1000)),
    )
    op.create_index("ix_alerts_alert_type", "alerts", ["alert_type"])
    op.create_table(
        "health_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("session_id", sa.String(36), sa.ForeignKey("sessions.id", ondelete="SET NULL")),
        _ts("created_at", False),
        sa.Column("component", sa.String(50), nullable=False),
        sa.Column("level", sa.String(10), nullable=False),
        sa.Column("message", sa.String(1000), nullable=False),
        sa.Column("data", sa.JSON),
    )
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        _ts("created_at", False),
        sa.Column("source_path", sa.String(1000), nullable=False),
        sa.Column("stored_path", sa.String(1000), nullable=False),
        sa.Column("weights_sha256", sa.String(64), nullable=False),
        sa.Column("stats_sha256", sa.String(64)),
        sa.Column("status", sa.String(20), nullable=False),
        _ts("promoted_at"),
        sa.Column("notes", sa.String(1000)),
    )


def downgrade() -> None:
    for name in ("model_versions", "health_events", "alerts", "metrics", "trades", "sessions"):
        op.drop_table(name)
