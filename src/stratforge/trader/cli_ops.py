"""Operations commands of ``stratforge trader``: run, record, kill, models.

Plain functions registered on the trader Typer app by :func:`register` (called by
``stratforge/trader/cli.py``); this module does not import the CLI module, so there is no cycle.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console()
models_app = typer.Typer(
    no_args_is_help=True, pretty_exceptions_enable=False, help="Model registry and rollback."
)

DATA_DIR = typer.Option(
    Path(os.environ.get("STRATFORGE_DATA_DIR", "data")), "--data-dir", help="Data directory."
)
DB_URL = typer.Option(
    None, "--database-url", envvar="DATABASE_URL", help="Store URL (default SQLite in data dir)."
)


def _fail(msg: str) -> NoReturn:
    console.print(f"[red]error:[/red] {escape(msg)}", highlight=False, soft_wrap=True)  # one line
    raise typer.Exit(2)


def _store(data_dir: Path, database_url: str | None):  # noqa: ANN202 - lazy import keeps --help fast
    from stratforge.trader.storage import Store

    try:
        return Store(database_url, data_dir)
    except Exception as exc:  # one line, no traceback: a bad URL or unreachable server
        _fail(f"cannot open the store: {type(exc).__name__}: {str(exc).splitlines()[0]}")


def run_cmd(
    mode: str = typer.Option("paper", "--mode", help="paper (default) or live."),
    replay: Path | None = typer.Option(
        None, "--replay", help="Replay file (JSONL) to trade on (paper only)."
    ),
    model: str | None = typer.Option(
        None, "--model", help="Model directory/file or registry name (default: active)."
    ),
    data_dir: Path = DATA_DIR,
    database_url: str | None = DB_URL,
    trade_size: float = typer.Option(10.0, "--trade-size", help="USDC per entry (full size)."),
    sizing: str = typer.Option(
        "confidence", "--sizing", help="confidence (0.25-1.0 x trade size by price) or fixed."
    ),
    tick: float = typer.Option(5.0, "--tick", help="Seconds between decisions."),
    daily_loss_limit: float = typer.Option(
        100.0,
        "--daily-loss-limit",
        help="USDC lost in a UTC day after which entries stop until the next day.",
    ),
    explore: bool = typer.Option(False, "--explore", help="Sample actions (seeded) instead of the argmax."),
    learn: bool = typer.Option(
        False, "--learn", help="Online PPO updates; saves the model to <data>/learned."
    ),
    pace: float = typer.Option(0.0, "--pace", help="Wall seconds to wait per replay tick (demos)."),
    health_port: int | None = typer.Option(None, "--health-port", help="Serve /health, /metrics and / here."),
    resume: bool = typer.Option(
        True, "--resume/--no-resume", help="Resume a crashed session of the same replay."
    ),
    futures: str = typer.Option(
        "auto", "--futures", help="Live feeds: binance, okx, or auto (OKX when Binance goes silent)."
    ),
    i_understand: bool = typer.Option(False, "--i-understand-live-trading", help="Required for --mode live."),
) -> None:
    """Run the trading worker (paper by default; a replay or live feeds)."""
    from stratforge.trader.redaction import install_redaction
    from stratforge.trader.safety import SafetyConfig
    from stratforge.trader.worker import WorkerConfig, install_signal_stop

    install_redaction()
    for noisy in ("alembic", "httpx"):  # schema migrations and every HTTP request are not news
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if mode not in ("paper", "live"):
        raise typer.BadParameter("must be paper or live", param_hint="--mode")
    if sizing not in ("confidence", "fixed"):
        raise typer.BadParameter("confidence or fixed", param_hint="--sizing")
    if futures not in ("binance", "okx", "auto"):
        raise typer.BadParameter("binance, okx or auto", param_hint="--futures")
    if mode == "live":
        if replay is not None:
            _fail("--replay runs in paper mode only")
        if not i_understand:
            _fail("live trading moves real money: add --i-understand-live-trading to confirm")
    if replay is not None and not replay.exists():
        raise typer.BadParameter(f"no such file: {replay}", param_hint="--replay")
    if trade_size <= 0 or tick <= 0 or daily_loss_limit <= 0:
        _fail("--trade-size, --tick and --daily-loss-limit must be positive")
    execution = _live_execution(trade_size) if mode == "live" else None
    store = _store(data_dir, database_url)
    from stratforge.trader.registry import Registry, RegistryError

    try:
        model_path, version = Registry(store, data_dir).resolve(model)
    except RegistryError as exc:
        _fail(str(exc))
    policy = _load_model(model_path)
    agent = None
    if learn:
        from stratforge.trader.ppo import PPOAgent

        agent = PPOAgent(policy)
    cfg = WorkerConfig(
        mode=mode,
        replay=replay,
        data_dir=data_dir,
        database_url=database_url,
        trade_size=trade_size,
        sizing=sizing,
        tick_s=tick,
        explore=explore,
        learn=learn,
        pace_s=pace,
        health_port=health_port,
        webhook_url=os.environ.get("DISCORD_WEBHOOK_URL"),
        model_version=version,
        resume=resume,
        futures=futures,
        safety=SafetyConfig(daily_loss_limit=daily_loss_limit),
    )
    stop = threading.Event()
    install_signal_stop(stop)
    from stratforge.trader.checkpoint import CheckpointError

    if replay is None:  # live feeds: real orders in live mode, paper fills against live books otherwise
        from stratforge.trader.live_runner import run_live

        try:
            session_id = run_live(cfg, policy, store=store, stop=stop, execution=execution)
        except (RuntimeError, CheckpointError) as exc:
            _fail(str(exc))
        console.print(f"session {session_id} stopped")
        return
    from stratforge.trader.markets.replay import ReplayError
    from stratforge.trader.replay_runner import run_replay

    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("replay", total=1.0)
        try:
            result = run_replay(
                cfg,
                replay,  # streamed from disk: memory stays flat however long the replay
                policy,
                store=store,
                stop=stop,
                agent=agent,
                progress=lambda done, total: bar.update(task, completed=done / max(total, 1e-9)),
            )
        except (ReplayError, CheckpointError) as exc:
            _fail(str(exc))
    if agent is not None:
        out = agent.save(data_dir / "learned")
        console.print(f"learned model saved to {out}")
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(result.exit_reasons.items())) or "none"
    console.print(
        f"session {result.session_id}{' (resumed, ' + str(result.restored_positions) + ' positions restored)' if result.resumed else ''}: "
        f"{result.trades} closed trades, {result.open_positions} open, PnL ${result.pnl:.2f}; exits: {reasons}",
        highlight=False,
    )


def _load_model(path: Path):  # noqa: ANN202 - lazy import keeps --help fast
    """The policy at ``path``, or one line saying why it cannot be loaded (exit 2)."""
    from stratforge.trader.model import load_policy

    try:
        return load_policy(path)
    except Exception as exc:  # corrupt/truncated safetensors, wrong shapes, missing stats
        _fail(
            f"cannot load model {path}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        )


def _live_execution(trade_size: float):  # noqa: ANN202 - the live extra is imported lazily
    """The venue execution from the environment, after the balance and allowance checks; every
    failure (missing extra, missing or bad credentials, unreachable venue) is one line, exit 2."""
    from stratforge.trader.live.executor import LiveConfigError, LiveExecution, LiveExecutor

    client_log = logging.getLogger("py_clob_client_v2")
    level = client_log.level
    client_log.setLevel(logging.CRITICAL)  # its request-error lines would repeat our one line
    try:
        executor = LiveExecutor.from_env()
        executor.check_ready(trade_size)
    except LiveConfigError as exc:
        _fail(str(exc))
    finally:
        client_log.setLevel(level)
    return LiveExecution(executor)


def kill_cmd(
    data_dir: Path = DATA_DIR,
    off: bool = typer.Option(False, "--off", help="Remove the kill switch (entries resume)."),
) -> None:
    """Kill switch: stop new entries of every worker using this data directory (exits still run)."""
    from stratforge.trader.safety import kill_switch_path

    path = kill_switch_path(data_dir)
    if off:
        path.unlink(missing_ok=True)
        console.print("kill switch off: entries allowed")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) + "\n")
        console.print(f"kill switch on ({path}): no new entries")


def record_cmd(
    out: Path = typer.Option(..., "--out", help="Replay file to append to."),
    assets: str = typer.Option("BTC,ETH,SOL,XRP", "--assets", help="Comma-separated assets."),
    duration: float = typer.Option(900.0, "--duration", help="Seconds to record."),
    futures: str = typer.Option("binance", "--futures", help="binance or okx."),
    gamma_url: str = typer.Option("https://gamma-api.polymarket.com", "--gamma-url"),
    clob_url: str = typer.Option("https://clob.polymarket.com", "--clob-url"),
    clob_ws_url: str = typer.Option("wss://ws-subscriptions-clob.polymarket.com/ws/market", "--clob-ws-url"),
    futures_ws_url: str | None = typer.Option(
        None, "--futures-ws-url", help="Override the futures websocket."
    ),
) -> None:
    """Record live Polymarket books and futures flow to a replay file (the replay format)."""
    from stratforge.trader.live.discovery import DiscoveryConfig, discover
    from stratforge.trader.live.feeds import BinanceFuturesFeed, ClobMarketFeed, OkxSwapFeed
    from stratforge.trader.live.recorder import ReplayWriter, record
    from stratforge.trader.markets.messages import SYMBOLS

    names = [a.strip().upper() for a in assets.split(",") if a.strip()]
    bad = [a for a in names if a not in SYMBOLS]
    if bad or not names:
        raise typer.BadParameter(
            f"unknown assets {bad}; choose from {', '.join(SYMBOLS)}", param_hint="--assets"
        )
    if futures not in ("binance", "okx"):
        raise typer.BadParameter("binance or okx", param_hint="--futures")
    markets = discover(names, time.time(), DiscoveryConfig(gamma_url=gamma_url, clob_url=clob_url))
    if not markets:
        _fail("no live markets found (Gamma/CLOB unreachable or no open windows)")
    writer = ReplayWriter(out)
    for m in markets:
        writer.write_market(m)
    tokens = [t for m in markets for t in (m.up_token, m.down_token)]
    symbols = [SYMBOLS[a] for a in names]
    kw = {"url": futures_ws_url} if futures_ws_url else {}
    fut = BinanceFuturesFeed(symbols, **kw) if futures == "binance" else OkxSwapFeed(symbols, **kw)
    feeds = [ClobMarketFeed(tokens, url=clob_ws_url), fut]
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task(f"recording {len(markets)} markets", total=duration)
        t0 = time.time()
        n = asyncio.run(
            record(
                feeds, writer, duration, on_message=lambda _n: bar.update(task, completed=time.time() - t0)
            )
        )
    writer.close()
    console.print(f"wrote {n} lines to {out}")


# -- models ----------------------------------------------------------------------------------------
@models_app.command("list")
def models_list(data_dir: Path = DATA_DIR, database_url: str | None = DB_URL) -> None:
    """List imported models (name, status, hashes, promotion time)."""
    from stratforge.trader.registry import Registry

    table = Table("name", "status", "weights sha256", "stats sha256", "promoted", "source")
    for v in Registry(_store(data_dir, database_url), data_dir).list():
        table.add_row(
            v.name,
            v.status,
            v.weights_sha256[:16],
            (v.stats_sha256 or "-")[:16],
            v.promoted_at.strftime("%Y-%m-%d %H:%M:%S") if v.promoted_at else "-",
            v.source_path,
        )
    console.print(table)


@models_app.command("import")
def models_import(
    path: Path = typer.Argument(
        ..., help="Model directory (rl_model.safetensors + stats) or .safetensors file."
    ),
    name: str | None = typer.Option(None, "--name"),
    notes: str | None = typer.Option(None, "--notes"),
    data_dir: Path = DATA_DIR,
    database_url: str | None = DB_URL,
) -> None:
    """Copy a model into the registry (hashed, immutable)."""
    from stratforge.trader.registry import Registry, RegistryError

    if not path.exists():
        raise typer.BadParameter(f"no such path: {path}", param_hint="PATH")
    try:
        v = Registry(_store(data_dir, database_url), data_dir).import_model(path, name, notes)
    except RegistryError as exc:
        _fail(str(exc))
    console.print(f"imported {v.name} (weights {v.weights_sha256[:16]})")


@models_app.command("promote")
def models_promote(name: str, data_dir: Path = DATA_DIR, database_url: str | None = DB_URL) -> None:
    """Make a model the active one (the previous active becomes the rollback target)."""
    from stratforge.trader.registry import Registry, RegistryError

    try:
        v = Registry(_store(data_dir, database_url), data_dir).promote(name)
    except RegistryError as exc:
        _fail(str(exc))
    console.print(f"active model: {v.name}")


@models_app.command("rollback")
def models_rollback(data_dir: Path = DATA_DIR, database_url: str | None = DB_URL) -> None:
    """Retire the active model and re-activate the previously promoted one (hash-verified)."""
    from stratforge.trader.registry import Registry, RegistryError

    try:
        old, new = Registry(_store(data_dir, database_url), data_dir).rollback()
    except RegistryError as exc:
        _fail(str(exc))
    console.print(f"rolled back: {old.name} -> {new.name}")


@models_app.command("ab")
def models_ab(
    a: str = typer.Argument(..., help="Model A (registry name or path)."),
    b: str = typer.Argument(..., help="Model B (registry name or path)."),
    replay: Path = typer.Option(..., "--replay", help="Replay both models on this file."),
    explore: bool = typer.Option(
        False, "--explore", help="Seeded sampling instead of argmax (same seeds for A/B)."
    ),
    trade_size: float = typer.Option(10.0, "--trade-size"),
    data_dir: Path = DATA_DIR,
    database_url: str | None = DB_URL,
) -> None:
    """A/B two models on the same replay through the paper broker; PnL difference with a 95% CI."""
    from stratforge.trader.markets.replay import ReplayError, read_session
    from stratforge.trader.model import load_policy
    from stratforge.trader.registry import Registry, RegistryError, paired_ci
    from stratforge.trader.replay_runner import run_replay
    from stratforge.trader.storage import Store
    from stratforge.trader.worker import WorkerConfig

    if not replay.exists():
        raise typer.BadParameter(f"no such file: {replay}", param_hint="--replay")
    reg = Registry(_store(data_dir, database_url), data_dir)
    try:
        paths = [reg.resolve(ref) for ref in (a, b)]
        session = read_session(replay)
    except (RegistryError, ReplayError) as exc:
        _fail(str(exc))
    per_market: list[dict[str, float]] = []
    totals: list[tuple[float, int]] = []
    logging.getLogger("stratforge.trader.worker").setLevel(logging.WARNING)
    for label, (path, _version) in zip("AB", paths, strict=True):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = WorkerConfig(
                replay=replay, data_dir=Path(tmp), explore=explore, trade_size=trade_size, resume=False
            )
            store = Store(data_dir=tmp)  # scratch store: A/B runs are not trading sessions
            console.print(f"running {label}: {path}")
            res = run_replay(
                cfg, read_session(replay) if label == "B" else session, load_policy(path), store=store
            )
            pm: dict[str, float] = {m.condition_id: 0.0 for m in session.markets}
            for t in store.trades(res.session_id, status="closed"):
                pm[t.condition_id] = pm.get(t.condition_id, 0.0) + (t.pnl or 0.0)
            per_market.append(pm)
            totals.append((res.pnl, res.trades))
            store.close()
    n, mean, lo, hi = paired_ci(per_market[0], per_market[1])
    table = Table("", "A", "B")
    table.add_row("model", paths[0][1], paths[1][1])
    table.add_row("PnL $", f"{totals[0][0]:.2f}", f"{totals[1][0]:.2f}")
    table.add_row("closed trades", str(totals[0][1]), str(totals[1][1]))
    console.print(table)
    console.print(
        f"A - B: ${totals[0][0] - totals[1][0]:.2f} over {n} markets; per market {mean:+.3f} "
        f"(95% CI {lo:+.3f} .. {hi:+.3f}){' - significant' if lo > 0 or hi < 0 else ' - not significant'}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add run, kill, record and the models group to the trader app."""
    app.command("run")(run_cmd)
    app.command("kill")(kill_cmd)
    app.command("record")(record_cmd)
    app.add_typer(models_app, name="models")
