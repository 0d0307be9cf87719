"""Durable state of one explorer run: a SQLite database plus human-readable files.

Layout of a run directory (default ``.stratforge/explore/``)::

    run.sqlite              the run, iterations, champion history, templates, events (WAL mode)
    generated/iter_0001.sol the extracted source of every iteration
    prompts/iter_0001.md    the prompt sent for every iteration
    responses/iter_0001.md  the raw model response (when there was one)
    templates/              templates extracted from strong strategies

Crash safety: every write is one SQLite transaction, and files are written to a temporary name
then renamed, so a kill at any instant leaves either the old or the new content. The explorer
writes each iteration with :meth:`RunStore.write_iteration`: its record, its generation's members,
the proposer's snapshot, a champion change, extracted templates and the iteration's events in ONE
transaction (the iteration's files are written just before it, ``champion.sol`` just after), so
an iteration is either wholly in the store or not at all, and a resumed run re-runs it from the
previous iteration's proposer snapshot.

The lower-level ``begin_iteration`` / ``finish_iteration`` pair marks an iteration *in flight*
(row with ``finished_at`` NULL) and finishes it; :meth:`RunStore.in_flight` lists such rows and
:meth:`RunStore.next_iteration_number` hands the smallest of them out again, so a number is never
duplicated and a finished iteration is never replaced.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stratforge.files import atomic_write_text

DEFAULT_RUN_DIR = Path(".stratforge/explore")
DB_NAME = "run.sqlite"
SCHEMA_VERSION = 2

#: Iteration states. ``proposed``: begun, not yet finished (in flight while ``finished_at`` is NULL).
STATUS_PROPOSED = "proposed"
STATUS_FAILED = "failed"
STATUS_EVALUATED = "evaluated"
_FINAL_STATUSES = (STATUS_FAILED, STATUS_EVALUATED)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS run (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    config_json TEXT NOT NULL,
    seed INTEGER NOT NULL,
    started_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    status TEXT NOT NULL,
    versions_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS iterations (
    number INTEGER PRIMARY KEY,
    attempt INTEGER NOT NULL DEFAULT 1,
    hypothesis TEXT,
    proposer TEXT,
    template TEXT,
    params_json TEXT,
    prompt TEXT,
    response TEXT,
    source TEXT,
    source_hash TEXT,
    errors_json TEXT NOT NULL DEFAULT '[]',
    stage_results_json TEXT NOT NULL DEFAULT '{}',
    edge REAL,
    holdout_edge REAL,
    tokens_in INTEGER NOT NULL DEFAULT 0,
    tokens_out INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    timings_json TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL,
    proposer_state BLOB
);
CREATE INDEX IF NOT EXISTS iterations_hash ON iterations(source_hash);
CREATE TABLE IF NOT EXISTS candidates (
    iteration INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    source TEXT NOT NULL,
    source_hash TEXT NOT NULL,
    template TEXT,
    params_json TEXT,
    status TEXT NOT NULL,
    edge REAL,
    sims INTEGER NOT NULL DEFAULT 0,
    errors_json TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (iteration, idx)
);
CREATE TABLE IF NOT EXISTS champions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    iteration INTEGER NOT NULL,
    edge REAL NOT NULL,
    holdout_edge REAL,
    stats_json TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS templates (
    name TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    schema_json TEXT NOT NULL,
    source_iteration INTEGER,
    edge REAL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    level TEXT NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    iteration INTEGER,
    data_json TEXT NOT NULL DEFAULT '{}'
);
"""


class RunExistsError(RuntimeError):
    """A run already lives in the directory and ``resume`` was not requested."""


class NoRunError(RuntimeError):
    """``resume`` was requested but the directory holds no run."""


@dataclass(frozen=True)
class RunInfo:
    config: dict[str, Any]
    seed: int
    started_at: float
    updated_at: float
    status: str
    versions: dict[str, Any]


@dataclass(frozen=True)
class Iteration:
    """One row of the iterations table, JSON columns decoded."""

    number: int
    attempt: int
    hypothesis: str | None
    proposer: str | None
    template: str | None
    params: dict[str, Any] | None
    prompt: str | None
    response: str | None
    source: str | None
    source_hash: str | None
    errors: list[str]
    stage_results: dict[str, Any]
    edge: float | None
    holdout_edge: float | None
    tokens_in: int
    tokens_out: int
    cost_usd: float
    timings: dict[str, float]
    status: str
    started_at: float
    finished_at: float | None

    @property
    def finished(self) -> bool:
        return self.finished_at is not None


@dataclass(frozen=True)
class Champion:
    id: int
    iteration: int
    edge: float
    holdout_edge: float | None
    stats: dict[str, Any]
    reason: str
    created_at: float


@dataclass(frozen=True)
class TemplateRecord:
    name: str
    path: str
    schema: dict[str, Any]
    source_iteration: int | None
    edge: float | None
    created_at: float


@dataclass(frozen=True)
class Event:
    id: int
    ts: float
    level: str
    kind: str
    message: str
    iteration: int | None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Member:
    """One candidate of an iteration's generation (the iteration row holds the best one)."""

    index: int
    source: str
    template: str | None
    params: dict[str, Any] | None
    status: str
    edge: float | None
    sims: int
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ChampionChange:
    """A promotion, written with the iteration that earned it."""

    edge: float
    reason: str
    stats: dict[str, Any]
    holdout_edge: float | None = None


@dataclass(frozen=True)
class NewTemplate:
    name: str
    path: str
    schema: dict[str, Any]
    edge: float | None


@dataclass(frozen=True)
class NewEvent:
    kind: str
    message: str
    level: str = "info"
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class IterationRecord:
    """Everything one iteration produced; :meth:`RunStore.write_iteration` stores it atomically."""

    number: int
    status: str
    proposer: str
    hypothesis: str | None = None
    source: str | None = None
    template: str | None = None
    params: dict[str, Any] | None = None
    edge: float | None = None
    holdout_edge: float | None = None
    errors: list[str] = field(default_factory=list)
    stage_results: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    prompt: str | None = None  #: None: nothing was sent to a model, no prompt file is written
    response: str | None = None
    proposer_state: bytes | None = None
    members: list[Member] = field(default_factory=list)
    champion: ChampionChange | None = None
    templates: list[NewTemplate] = field(default_factory=list)
    events: list[NewEvent] = field(default_factory=list)
    started_at: float | None = None


def source_hash(source: str) -> str:
    """Content hash of a strategy source (whitespace at the ends ignored)."""
    import hashlib

    return hashlib.sha256(source.strip().encode("utf-8")).hexdigest()


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


class RunStore:
    """Access to one run directory. Create with :func:`open_run`."""

    def __init__(self, root: Path, conn: sqlite3.Connection) -> None:
        self.root = root
        self._conn = conn

    # -- plumbing -------------------------------------------------------------------------------

    @property
    def db_path(self) -> Path:
        return self.root / DB_NAME

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; ``BEGIN IMMEDIATE`` takes the write lock up front."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check`` result ('ok' when the database is sound)."""
        return str(self._conn.execute("PRAGMA integrity_check").fetchone()[0])

    # -- run ------------------------------------------------------------------------------------

    def run_info(self) -> RunInfo:
        row = self._conn.execute(
            "SELECT config_json, seed, started_at, updated_at, status, versions_json FROM run WHERE id = 1"
        ).fetchone()
        if row is None:
            raise NoRunError(f"no run in {self.root}")
        return RunInfo(json.loads(row[0]), int(row[1]), row[2], row[3], row[4], json.loads(row[5]))

    def set_status(self, status: str) -> None:
        with self._tx() as c:
            c.execute("UPDATE run SET status = ?, updated_at = ? WHERE id = 1", (status, time.time()))

    def update_versions(self, versions: dict[str, Any]) -> None:
        with self._tx() as c:
            c.execute(
                "UPDATE run SET versions_json = ?, updated_at = ? WHERE id = 1",
                (_dumps(versions), time.time()),
            )

    # -- iterations -----------------------------------------------------------------------------

    def in_flight(self) -> list[int]:
        """Numbers of iterations that were begun but never finished (e.g. the process was killed)."""
        rows = self._conn.execute(
            "SELECT number FROM iterations WHERE finished_at IS NULL ORDER BY number"
        ).fetchall()
        return [int(r[0]) for r in rows]

    def next_iteration_number(self) -> int:
        """The number the next iteration should use: an in-flight one first, else one past the last."""
        pending = self.in_flight()
        if pending:
            return pending[0]
        row = self._conn.execute("SELECT MAX(number) FROM iterations").fetchone()
        return int(row[0] or 0) + 1

    def begin_iteration(
        self,
        number: int | None = None,
        *,
        hypothesis: str | None = None,
        proposer: str | None = None,
        template: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> int:
        """Insert the row of an iteration that starts now and return its number.

        Re-beginning an in-flight number replaces that row (its attempt counter goes up); beginning
        a number that already finished is an error, so finished work is never overwritten.
        """
        with self._tx() as c:
            if number is None:
                pending = c.execute(
                    "SELECT MIN(number) FROM iterations WHERE finished_at IS NULL"
                ).fetchone()[0]
                if pending is not None:
                    number = int(pending)
                else:
                    number = int(c.execute("SELECT MAX(number) FROM iterations").fetchone()[0] or 0) + 1
            old = c.execute(
                "SELECT attempt, finished_at FROM iterations WHERE number = ?", (number,)
            ).fetchone()
            if old is not None and old[1] is not None:
                raise ValueError(f"iteration {number} already finished")
            attempt = 1 if old is None else int(old[0]) + 1
            c.execute(
                "INSERT OR REPLACE INTO iterations (number, attempt, hypothesis, proposer, template,"
                " params_json, status, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    number,
                    attempt,
                    hypothesis,
                    proposer,
                    template,
                    None if params is None else _dumps(params),
                    STATUS_PROPOSED,
                    time.time(),
                ),
            )
        return number

    def save_prompt(self, number: int, prompt: str) -> Path:
        """Store the prompt of an in-flight iteration and write ``prompts/iter_NNNN.md``."""
        path = self.root / "prompts" / f"iter_{number:04d}.md"
        atomic_write_text(path, prompt)
        with self._tx() as c:
            c.execute("UPDATE iterations SET prompt = ? WHERE number = ?", (prompt, number))
        return path

    def save_response(self, number: int, response: str) -> Path:
        """Store the raw model response and write ``responses/iter_NNNN.md``."""
        path = self.root / "responses" / f"iter_{number:04d}.md"
        atomic_write_text(path, response)
        with self._tx() as c:
            c.execute("UPDATE iterations SET response = ? WHERE number = ?", (response, number))
        return path

    def save_source(self, number: int, source: str) -> Path:
        """Store the extracted source (and its hash) and write ``generated/iter_NNNN.sol``."""
        path = self.generated_path(number)
        atomic_write_text(path, source)
        with self._tx() as c:
            c.execute(
                "UPDATE iterations SET source = ?, source_hash = ? WHERE number = ?",
                (source, source_hash(source), number),
            )
        return path

    def generated_path(self, number: int) -> Path:
        return self.root / "generated" / f"iter_{number:04d}.sol"

    def finish_iteration(
        self,
        number: int,
        *,
        status: str,
        edge: float | None = None,
        holdout_edge: float | None = None,
        errors: Sequence[str] = (),
        stage_results: dict[str, Any] | None = None,
        tokens_in: int = 0,
        tokens_out: int = 0,
        cost_usd: float = 0.0,
        timings: dict[str, float] | None = None,
        hypothesis: str | None = None,
        template: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        """Record the outcome of an iteration in one transaction; it is no longer in flight after this."""
        if status not in _FINAL_STATUSES:
            raise ValueError(f"final status must be one of {_FINAL_STATUSES}, got {status!r}")
        with self._tx() as c:
            cur = c.execute(
                "UPDATE iterations SET status = ?, edge = ?, holdout_edge = ?, errors_json = ?,"
                " stage_results_json = ?, tokens_in = ?, tokens_out = ?, cost_usd = ?, timings_json = ?,"
                " hypothesis = COALESCE(?, hypothesis), template = COALESCE(?, template),"
                " params_json = COALESCE(?, params_json), finished_at = ?"
                " WHERE number = ? AND finished_at IS NULL",
                (
                    status,
                    edge,
                    holdout_edge,
                    _dumps(list(errors)),
                    _dumps(stage_results or {}),
                    tokens_in,
                    tokens_out,
                    cost_usd,
                    _dumps(timings or {}),
                    hypothesis,
                    template,
                    None if params is None else _dumps(params),
                    time.time(),
                    number,
                ),
            )
            if cur.rowcount != 1:
                raise ValueError(f"iteration {number} is not in flight")

    def write_iteration(self, rec: IterationRecord) -> None:
        """Store a whole iteration in one transaction (see the module docstring).

        Raises ValueError if iteration ``rec.number`` already finished; an in-flight row with that
        number (``begin_iteration``) is replaced."""
        if rec.status not in _FINAL_STATUSES:
            raise ValueError(f"final status must be one of {_FINAL_STATUSES}, got {rec.status!r}")
        if rec.source is not None:
            atomic_write_text(self.generated_path(rec.number), rec.source)
        if rec.prompt is not None:
            atomic_write_text(self.root / "prompts" / f"iter_{rec.number:04d}.md", rec.prompt)
        if rec.response is not None:
            atomic_write_text(self.root / "responses" / f"iter_{rec.number:04d}.md", rec.response)
        now = time.time()
        with self._tx() as c:
            old = c.execute(
                "SELECT attempt, finished_at FROM iterations WHERE number = ?", (rec.number,)
            ).fetchone()
            if old is not None and old[1] is not None:
                raise ValueError(f"iteration {rec.number} already finished")
            c.execute(
                "INSERT OR REPLACE INTO iterations (number, attempt, hypothesis, proposer, template,"
                " params_json, prompt, response, source, source_hash, errors_json, stage_results_json,"
                " edge, holdout_edge, tokens_in, tokens_out, cost_usd, timings_json, status, started_at,"
                " finished_at, proposer_state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                " ?, ?, ?, ?, ?)",
                (
                    rec.number,
                    1 if old is None else int(old[0]) + 1,
                    rec.hypothesis,
                    rec.proposer,
                    rec.template,
                    None if rec.params is None else _dumps(rec.params),
                    rec.prompt,
                    rec.response,
                    rec.source,
                    None if rec.source is None else source_hash(rec.source),
                    _dumps(list(rec.errors)),
                    _dumps(rec.stage_results),
                    rec.edge,
                    rec.holdout_edge,
                    rec.tokens_in,
                    rec.tokens_out,
                    rec.cost_usd,
                    _dumps(rec.timings),
                    rec.status,
                    rec.started_at if rec.started_at is not None else now,
                    now,
                    rec.proposer_state,
                ),
            )
            c.execute("DELETE FROM candidates WHERE iteration = ?", (rec.number,))
            c.executemany(
                "INSERT INTO candidates (iteration, idx, source, source_hash, template, params_json, status,"
                " edge, sims, errors_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        rec.number,
                        m.index,
                        m.source,
                        source_hash(m.source),
                        m.template,
                        None if m.params is None else _dumps(m.params),
                        m.status,
                        m.edge,
                        m.sims,
                        _dumps(list(m.errors)),
                    )
                    for m in rec.members
                ],
            )
            if rec.champion is not None:
                ch = rec.champion
                c.execute(
                    "INSERT INTO champions (iteration, edge, holdout_edge, stats_json, reason, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (rec.number, ch.edge, ch.holdout_edge, _dumps(ch.stats), ch.reason, now),
                )
            for t in rec.templates:
                c.execute(
                    "INSERT OR REPLACE INTO templates (name, path, schema_json, source_iteration, edge,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (t.name, t.path, _dumps(t.schema), rec.number, t.edge, now),
                )
            c.executemany(
                "INSERT INTO events (ts, level, kind, message, iteration, data_json) VALUES (?, ?, ?, ?, ?, ?)",
                [(now, e.level, e.kind, e.message, rec.number, _dumps(e.data)) for e in rec.events],
            )
        if rec.champion is not None and rec.source is not None:
            atomic_write_text(self.root / "champion.sol", rec.source)

    def members(self, number: int) -> list[Member]:
        """The generation of iteration ``number``, in proposal order."""
        rows = self._conn.execute(
            "SELECT idx, source, template, params_json, status, edge, sims, errors_json FROM candidates"
            " WHERE iteration = ? ORDER BY idx",
            (number,),
        ).fetchall()
        return [
            Member(r[0], r[1], r[2], None if r[3] is None else json.loads(r[3]), r[4], r[5], r[6], json.loads(r[7]))
            for r in rows
        ]

    def proposer_state(self) -> bytes | None:
        """The proposer snapshot of the last finished iteration that has one (None: start fresh)."""
        row = self._conn.execute(
            "SELECT proposer_state FROM iterations WHERE finished_at IS NOT NULL AND proposer_state IS NOT NULL"
            " ORDER BY number DESC LIMIT 1"
        ).fetchone()
        return None if row is None else bytes(row[0])

    def iteration(self, number: int) -> Iteration | None:
        sql = f"SELECT {_ITER_COLS} FROM iterations WHERE number = ?"
        row = self._conn.execute(sql, (number,)).fetchone()
        return None if row is None else _iteration(row)

    def iterations(self, status: str | None = None, *, finished_only: bool = False) -> list[Iteration]:
        sql = f"SELECT {_ITER_COLS} FROM iterations"
        where: list[str] = []
        args: list[Any] = []
        if status is not None:
            where.append("status = ?")
            args.append(status)
        if finished_only:
            where.append("finished_at IS NOT NULL")
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY number"
        return [_iteration(r) for r in self._conn.execute(sql, args).fetchall()]

    def top_iterations(self, n: int) -> list[Iteration]:
        """Best evaluated iterations by edge (ties: lower number first)."""
        rows = self._conn.execute(
            f"SELECT {_ITER_COLS} FROM iterations WHERE status = ? AND edge IS NOT NULL"
            " ORDER BY edge DESC, number ASC LIMIT ?",
            (STATUS_EVALUATED, n),
        ).fetchall()
        return [_iteration(r) for r in rows]

    def recent_failures(self, n: int) -> list[Iteration]:
        rows = self._conn.execute(
            f"SELECT {_ITER_COLS} FROM iterations WHERE status = ? ORDER BY number DESC LIMIT ?",
            (STATUS_FAILED, n),
        ).fetchall()
        return [_iteration(r) for r in rows]

    def find_by_hash(self, digest: str) -> Iteration | None:
        """A finished iteration with this source hash (to skip re-evaluating a duplicate)."""
        row = self._conn.execute(
            f"SELECT {_ITER_COLS} FROM iterations WHERE source_hash = ? AND finished_at IS NOT NULL"
            " ORDER BY number LIMIT 1",
            (digest,),
        ).fetchone()
        return None if row is None else _iteration(row)

    def hypothesis_coverage(self, hypothesis_ids: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
        """Per hypothesis: finished iterations, evaluated ones and best edge (0 / None when unexplored)."""
        cov: dict[str, dict[str, Any]] = {
            h: {"iterations": 0, "evaluated": 0, "best_edge": None} for h in hypothesis_ids
        }
        rows = self._conn.execute(
            "SELECT hypothesis, COUNT(*), SUM(status = ?), MAX(edge) FROM iterations"
            " WHERE finished_at IS NOT NULL AND hypothesis IS NOT NULL GROUP BY hypothesis",
            (STATUS_EVALUATED,),
        ).fetchall()
        for hyp, count, evaluated, best in rows:
            cov[hyp] = {"iterations": int(count), "evaluated": int(evaluated or 0), "best_edge": best}
        return cov

    def totals(self) -> dict[str, Any]:
        row = self._conn.execute(
            "SELECT COUNT(*), SUM(status = ?), SUM(status = ?), COALESCE(SUM(tokens_in), 0),"
            " COALESCE(SUM(tokens_out), 0), COALESCE(SUM(cost_usd), 0), MAX(edge)"
            " FROM iterations WHERE finished_at IS NOT NULL",
            (STATUS_EVALUATED, STATUS_FAILED),
        ).fetchone()
        return {
            "iterations": int(row[0]),
            "evaluated": int(row[1] or 0),
            "failed": int(row[2] or 0),
            "tokens_in": int(row[3]),
            "tokens_out": int(row[4]),
            "cost_usd": float(row[5]),
            "best_edge": row[6],
            "in_flight": len(self.in_flight()),
        }

    # -- champions ------------------------------------------------------------------------------

    def record_champion(
        self,
        iteration: int,
        edge: float,
        *,
        reason: str,
        stats: dict[str, Any] | None = None,
        holdout_edge: float | None = None,
    ) -> None:
        """Append a promotion to the champion history (the audit trail) and copy the source out."""
        it = self.iteration(iteration)
        if it is not None and it.source:
            atomic_write_text(self.root / "champion.sol", it.source)
        with self._tx() as c:
            c.execute(
                "INSERT INTO champions (iteration, edge, holdout_edge, stats_json, reason, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (iteration, edge, holdout_edge, _dumps(stats or {}), reason, time.time()),
            )

    def set_champion_holdout(self, champion_id: int, holdout_edge: float, stats: dict[str, Any]) -> None:
        """A champion scored on the holdout seeds after its promotion: its mean, the stats that go with
        it (merged into the champion's) and its iteration's holdout edge, in one transaction."""
        with self._tx() as c:
            row = c.execute("SELECT iteration, stats_json FROM champions WHERE id = ?", (champion_id,)).fetchone()
            if row is None:
                raise KeyError(f"no champion with id {champion_id}")
            merged = {**json.loads(row[1]), **stats}
            c.execute(
                "UPDATE champions SET holdout_edge = ?, stats_json = ? WHERE id = ?",
                (holdout_edge, _dumps(merged), champion_id),
            )
            c.execute("UPDATE iterations SET holdout_edge = ? WHERE number = ?", (holdout_edge, row[0]))

    def champion(self) -> Champion | None:
        rows = self.champion_history()
        return rows[-1] if rows else None

    def champion_history(self) -> list[Champion]:
        rows = self._conn.execute(
            "SELECT id, iteration, edge, holdout_edge, stats_json, reason, created_at"
            " FROM champions ORDER BY id"
        ).fetchall()
        return [Champion(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6]) for r in rows]

    # -- templates ------------------------------------------------------------------------------

    def add_template(
        self,
        name: str,
        path: Path | str,
        schema: dict[str, Any],
        *,
        source_iteration: int | None = None,
        edge: float | None = None,
    ) -> None:
        with self._tx() as c:
            c.execute(
                "INSERT OR REPLACE INTO templates"
                " (name, path, schema_json, source_iteration, edge, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (name, str(path), _dumps(schema), source_iteration, edge, time.time()),
            )

    def templates(self) -> list[TemplateRecord]:
        rows = self._conn.execute(
            "SELECT name, path, schema_json, source_iteration, edge, created_at"
            " FROM templates ORDER BY created_at"
        ).fetchall()
        return [TemplateRecord(r[0], r[1], json.loads(r[2]), r[3], r[4], r[5]) for r in rows]

    # -- events ---------------------------------------------------------------------------------

    def add_event(
        self,
        kind: str,
        message: str,
        *,
        level: str = "info",
        iteration: int | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        with self._tx() as c:
            c.execute(
                "INSERT INTO events (ts, level, kind, message, iteration, data_json)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (time.time(), level, kind, message, iteration, _dumps(data or {})),
            )

    def events(self, kind: str | None = None, level: str | None = None) -> list[Event]:
        sql = "SELECT id, ts, level, kind, message, iteration, data_json FROM events"
        where, args = [], []
        if kind is not None:
            where.append("kind = ?")
            args.append(kind)
        if level is not None:
            where.append("level = ?")
            args.append(level)
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self._conn.execute(sql + " ORDER BY id", args).fetchall()
        return [Event(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6])) for r in rows]


_ITER_COLS = (
    "number, attempt, hypothesis, proposer, template, params_json, prompt, response, source, source_hash,"
    " errors_json, stage_results_json, edge, holdout_edge, tokens_in, tokens_out, cost_usd, timings_json,"
    " status, started_at, finished_at"
)


def _iteration(r: Sequence[Any]) -> Iteration:
    return Iteration(
        number=r[0],
        attempt=r[1],
        hypothesis=r[2],
        proposer=r[3],
        template=r[4],
        params=None if r[5] is None else json.loads(r[5]),
        prompt=r[6],
        response=r[7],
        source=r[8],
        source_hash=r[9],
        errors=json.loads(r[10]),
        stage_results=json.loads(r[11]),
        edge=r[12],
        holdout_edge=r[13],
        tokens_in=r[14],
        tokens_out=r[15],
        cost_usd=r[16],
        timings=json.loads(r[17]),
        status=r[18],
        started_at=r[19],
        finished_at=r[20],
    )


def _connect(path: Path) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN/COMMIT ourselves so each logical write is one transaction.
    conn = sqlite3.connect(path, isolation_level=None, timeout=30.0, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is on disk before we move on, so a kill (even of the machine) keeps finished work.
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def open_run(
    run_dir: Path | str = DEFAULT_RUN_DIR,
    *,
    resume: bool = False,
    config: dict[str, Any] | None = None,
    seed: int = 0,
    versions: dict[str, Any] | None = None,
) -> RunStore:
    """Open (or create) the run in ``run_dir``.

    * ``resume=False``: start a new run; raises :class:`RunExistsError` if the directory already has one.
    * ``resume=True``: continue the existing run (raises :class:`NoRunError` if there is none). Versions
      that differ from the recorded ones are stored and an ``alert`` event notes the change.
    """
    root = Path(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    conn = _connect(root / DB_NAME)
    store = RunStore(root, conn)
    try:
        with store._tx() as c:
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    c.execute(stmt)
            columns = {r[1] for r in c.execute("PRAGMA table_info(iterations)").fetchall()}
            if "proposer_state" not in columns:  # a run made before schema 2
                c.execute("ALTER TABLE iterations ADD COLUMN proposer_state BLOB")
            c.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
            exists = c.execute("SELECT 1 FROM run WHERE id = 1").fetchone() is not None
            if exists and not resume:
                raise RunExistsError(f"{root} already holds a run; resume it or choose another directory")
            if not exists and resume:
                raise NoRunError(f"{root} holds no run to resume")
            now = time.time()
            if not exists:
                c.execute(
                    "INSERT INTO run (id, config_json, seed, started_at, updated_at, status, versions_json)"
                    " VALUES (1, ?, ?, ?, ?, 'running', ?)",
                    (_dumps(config or {}), seed, now, now, _dumps(versions or {})),
                )
            else:
                c.execute("UPDATE run SET status = 'running', updated_at = ? WHERE id = 1", (now,))
    except BaseException:
        conn.close()
        raise
    if resume:
        # A kill during atomic_write_text can leave its temporary file behind; the real file is intact.
        for leftover in root.glob("*/.*.tmp"):
            leftover.unlink(missing_ok=True)
        champ = store.champion()
        it = None if champ is None else store.iteration(champ.iteration)
        if it is not None and it.source:  # a kill between commit and file write leaves it behind
            atomic_write_text(root / "champion.sol", it.source)
        info = store.run_info()
        pending = store.in_flight()
        store.add_event(
            "resume", f"resumed run; {len(pending)} iteration(s) in flight", data={"in_flight": pending}
        )
        if versions is not None and versions != info.versions:
            store.add_event(
                "versions_changed",
                "simulator/compiler versions differ from the ones recorded at start",
                level="alert",
                data={"old": info.versions, "new": versions},
            )
            store.update_versions(versions)
    return store
