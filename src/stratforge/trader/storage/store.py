"""The trader's store: engine set-up, migrations on open, and the few writes the worker needs.

SQLite file under a data directory by default; PostgreSQL when ``DATABASE_URL`` (or ``url``) says so.
Every write commits before returning, so a crash can lose at most the work in flight, never a
recorded trade.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from stratforge.trader.storage import validate
from stratforge.trader.storage.models import (
    Alert,
    HealthEvent,
    Metric,
    ModelVersion,
    Trade,
    TradingSession,
    utcnow,
)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def default_data_dir() -> Path:
    """``$STRATFORGE_DATA_DIR`` or ``./data`` (the Docker image mounts a volume there)."""
    return Path(os.environ.get("STRATFORGE_DATA_DIR", "data"))


def resolve_url(url: str | None = None, data_dir: Path | str | None = None) -> str:
    """Explicit URL, else ``DATABASE_URL``, else a SQLite file in the data directory."""
    url = url or os.environ.get("DATABASE_URL")
    if url:
        # Heroku/Fly style URLs name the driver-less scheme; we ship psycopg 3.
        if url.startswith("postgres://"):
            url = "postgresql+psycopg://" + url[len("postgres://") :]
        elif url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://") :]
        return url
    directory = Path(data_dir) if data_dir is not None else default_data_dir()
    directory.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(directory / 'trader.db').resolve()}"


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent, safe when processes open the store at once).

    Concurrent openers are serialised: a PostgreSQL advisory lock, or a file lock beside a SQLite file.
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    db_file = engine.url.database if engine.dialect.name == "sqlite" else None
    lock_fh = None
    if db_file and db_file != ":memory:":
        import fcntl

        lock_fh = open(f"{db_file}.migrate-lock", "a")  # noqa: SIM115 - held for the whole migration
        fcntl.flock(lock_fh, fcntl.LOCK_EX)
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(727274)")
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    finally:
        if lock_fh is not None:
            lock_fh.close()


class Store:
    """Thin facade over a SQLAlchemy engine; one instance may be shared by threads."""

    def __init__(self, url: str | None = None, data_dir: Path | str | None = None) -> None:
        self.url = resolve_url(url, data_dir)
        kwargs: dict[str, Any] = {"future": True}
        if self.url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        self.engine = create_engine(self.url, **kwargs)
        if self.url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        migrate(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        validate.install(self._sessions)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work that commits on success and rolls back on any error."""
        with self._sessions() as s:
            try:
                yield s
                s.commit()
            except BaseException:
                s.rollback()
                raise

    def close(self) -> None:
        self.engine.dispose()

    # -- sessions -----------------------------------------------------------------------------------
    def start_session(self, **fields: Any) -> TradingSession:
        row = TradingSession(**fields)
        with self.session() as s:
            s.add(row)
        return row

    def get_session(self, session_id: str) -> TradingSession | None:
        with self.session() as s:
            return s.get(TradingSession, session_id)

    def find_resumable(self, mode: str, source: str | None) -> TradingSession | None:
        """The newest session of this mode and source that never ended cleanly (a crash)."""
        with self.session() as s:
            stmt = (
                select(TradingSession)
                .where(TradingSession.mode == mode, TradingSession.status == "running")
                .order_by(TradingSession.started_at.desc())
            )
            if source is not None:
                stmt = stmt.where(TradingSession.source == source)
            return s.scalars(stmt).first()

    def end_session(self, session_id: str, status: str = "stopped") -> None:
        with self.session() as s:
            row = s.get(TradingSession, session_id)
            if row is not None:
                row.status = status
                row.ended_at = utcnow()

    def checkpoint(self, session_id: str, data: dict[str, Any], s: Session | None = None) -> None:
        """Store the recovery checkpoint (inside ``s`` when given, so it commits with a trade)."""
        if s is None:
            with self.session() as own:
                self.checkpoint(session_id, data, own)
            return
        row = s.get(TradingSession, session_id)
        if row is None:
            raise KeyError(f"no session {session_id}")
        row.checkpoint_data = data
        row.last_checkpoint = utcnow()

    # -- trades -------------------------------------------------------------------------------------
    def _close_in(
        self, s: Session, trade_id: str, fields: dict[str, Any], remainder: dict[str, Any] | None
    ) -> Trade:
        row = s.get(Trade, trade_id)
        if row is None:
            raise KeyError(f"no trade {trade_id}")
        if row.status != "open":
            raise ValueError(f"trade {trade_id} is already closed")
        for key, value in fields.items():
            setattr(row, key, value)
        row.status = "closed"
        sess = s.get(TradingSession, row.session_id)
        assert sess is not None
        sess.total_pnl = float(sess.total_pnl) + float(row.pnl or 0.0)
        sess.trade_count += 1
        sess.win_count += 1 if (row.pnl or 0.0) > 0 else 0
        if remainder is not None:
            s.add(Trade(status="open", **remainder))
        return row

    def commit_tick(
        self,
        session_id: str,
        checkpoint: dict[str, Any],
        opens: list[dict[str, Any]] = (),  # type: ignore[assignment]
        closes: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = (),  # type: ignore[assignment]
        metric: dict[str, Any] | None = None,
    ) -> None:
        """Everything one worker tick did, atomically: new trades, closes, a metric row, the checkpoint.

        Either the whole tick is recorded or none of it, so a worker killed mid-tick re-runs that tick
        from the previous checkpoint and ends in exactly the state of an uninterrupted run.
        """
        with self.session() as s:
            for fields in opens:
                s.add(Trade(status="open", **fields))
            s.flush()
            for trade_id, fields, remainder in closes:
                self._close_in(s, trade_id, fields, remainder)
            if metric is not None:
                s.add(Metric(session_id=session_id, **metric))
            self.checkpoint(session_id, checkpoint, s)

    def trades(
        self, session_id: str | None = None, status: str | None = None, limit: int | None = None
    ) -> list[Trade]:
        with self.session() as s:
            stmt = select(Trade).order_by(Trade.entry_time.desc(), Trade.id)
            if session_id is not None:
                stmt = stmt.where(Trade.session_id == session_id)
            if status is not None:
                stmt = stmt.where(Trade.status == status)
            if limit is not None:
                stmt = stmt.limit(limit)
            return list(s.scalars(stmt))

    # -- metrics, alerts, health -------------------------------------------------------------------
    def metrics(self, session_id: str, limit: int = 2000) -> list[Metric]:
        with self.session() as s:
            stmt = (
                select(Metric).where(Metric.session_id == session_id).order_by(Metric.id.desc()).limit(limit)
            )
            return list(reversed(list(s.scalars(stmt))))

    def record_alert(self, **fields: Any) -> Alert:
        row = Alert(**fields)
        with self.session() as s:
            s.add(row)
        return row

    def update_alert(self, alert_id: int, **fields: Any) -> None:
        with self.session() as s:
            row = s.get(Alert, alert_id)
            if row is None:
                raise KeyError(f"no alert {alert_id}")
            for key, value in fields.items():
                setattr(row, key, value)

    def alerts(self, alert_type: str | None = None) -> list[Alert]:
        with self.session() as s:
            stmt = select(Alert).order_by(Alert.id)
            if alert_type is not None:
                stmt = stmt.where(Alert.alert_type == alert_type)
            return list(s.scalars(stmt))

    def record_health(self, component: str, message: str, level: str = "info", **extra: Any) -> HealthEvent:
        row = HealthEvent(component=component, message=message, level=level, **extra)
        with self.session() as s:
            s.add(row)
        return row

    def health_events(self, session_id: str | None = None) -> list[HealthEvent]:
        with self.session() as s:
            stmt = select(HealthEvent).order_by(HealthEvent.id)
            if session_id is not None:
                stmt = stmt.where(HealthEvent.session_id == session_id)
            return list(s.scalars(stmt))

    # -- model versions -----------------------------------------------------------------------------
    def model_versions(self) -> list[ModelVersion]:
        with self.session() as s:
            return list(s.scalars(select(ModelVersion).order_by(ModelVersion.id)))


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets the health server read while the worker writes; FKs are off by default in SQLite.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()
