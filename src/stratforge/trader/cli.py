"""CLI commands of stratforge.trader: train, eval, backtest, synth."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import typer

try:  # recent Typer vendors its own copy of click
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover - older Typer uses click itself
    from click.exceptions import UsageError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from stratforge.trader import cli_ops

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)
# Wide tables when output goes to a file or pipe (logs), the terminal's width otherwise.
console = Console(width=None if sys.stdout.isatty() else 140)


@app.callback()
def _group(
    phase5_dir: Path | None = typer.Option(
        None,
        "--phase5-dir",
        envvar="STRATFORGE_PHASE5_DIR",
        help="Directory of the published Phase 5 weights (rl_model.safetensors), for 'phase5'.",
    ),
) -> None:
    """Prediction-market RL trader: synthetic/replay markets, paper broker, PPO training and evaluation."""
    if phase5_dir is not None:  # one setting, read by stratforge.trader.train.phase5_dir()
        import os

        os.environ["STRATFORGE_PHASE5_DIR"] = str(phase5_dir)


def _fail(msg: str) -> NoReturn:
    """One-line usage error (exit status 2, no traceback)."""
    raise UsageError(msg)


def _lag(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in text.split(","))
    except ValueError:
        _fail(f"--lag must be 'min,max' seconds, got {text!r}")
    if not 0 <= lo <= hi <= 300:
        _fail(f"--lag must satisfy 0 <= min <= max <= 300, got {text!r}")
    return lo, hi


def _sizing(text: str) -> str:
    from stratforge.trader.sizing import SIZINGS

    if text not in SIZINGS:
        _fail(f"--sizing must be one of {', '.join(SIZINGS)}, got {text!r}")
    return text


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
        console=console,
    )


@app.command()
def train(
    out: Path = typer.Option(Path("runs/trader"), "--out", "-o", help="Output directory."),
    episodes: int = typer.Option(
        200, min=1, help="Training episodes (one 15-minute window of 4 markets each)."
    ),
    seed: int = typer.Option(0, min=0, max=99, help="Run seed; episode k uses session seed seed*100000+k."),
    init: str = typer.Option("scratch", help="'scratch', 'phase5' (published weights) or a model directory."),
    envs: int = typer.Option(4, min=1, help="Episodes run in lockstep (batched policy calls)."),
    tick: float = typer.Option(5.0, min=0.5, help="Seconds between decisions."),
    trade_usd: float = typer.Option(10.0, min=1.0, help="USDC per opening order."),
    latency: float = typer.Option(0.5, min=0.0, help="Order latency in seconds."),
    buffer: int = typer.Option(512, min=16, help="PPO transitions per update."),
    minibatch: int = typer.Option(128, min=8, help="PPO minibatch size."),
    epochs: int = typer.Option(4, min=1, help="PPO epochs per update."),
    gamma: float = typer.Option(
        0.99, min=0.0, max=1.0, help="Discount (Phase 5 used 0.95; see TrainConfig)."
    ),
    entropy: float = typer.Option(0.03, min=0.0, help="Entropy bonus coefficient."),
    lr_actor: float = typer.Option(1e-4, min=0.0),
    lr_critic: float = typer.Option(3e-4, min=0.0),
    lag: str = typer.Option("0,2", help="Synthetic book lag range in seconds, 'min,max' (old: 15,40)."),
    lean: float = typer.Option(
        0.0, min=0.0, help="Synthetic stale-side thinning (0: no tell; the old market used 0.25)."
    ),
    sizing: str = typer.Option("confidence", help="Entry sizing: confidence (0.25-1.0 x size) or fixed."),
) -> None:
    """Train a PPO agent on synthetic sessions (checkpoints, updates.csv, final model in OUT/model)."""
    from stratforge.trader.train import TrainConfig
    from stratforge.trader.train import train as run_train

    if tick > 300 or 900 % tick > 1e-9:
        _fail(f"--tick must divide 900 seconds, got {tick}")
    if latency >= tick:
        _fail("--latency must be shorter than --tick")
    if init not in ("scratch", "phase5") and not Path(init).exists():
        _fail(f"--init: no such model directory {init!r} (use 'scratch', 'phase5' or a path)")
    if init == "phase5":
        from stratforge.trader.train import phase5_dir

        try:
            phase5_dir()
        except FileNotFoundError as exc:
            _fail(f"--init phase5: {exc}")
    cfg = TrainConfig(
        episodes=episodes, seed=seed, init=init, tick_s=tick, trade_usd=trade_usd, latency_s=latency,
        gamma=gamma, entropy_coef=entropy, lr_actor=lr_actor, lr_critic=lr_critic, buffer_size=buffer,
        minibatch_size=minibatch, n_epochs=epochs, n_envs=envs, lag_s=_lag(lag), imbalance_lean=lean,
        sizing=_sizing(sizing),
    )  # fmt: skip
    with _progress() as prog:
        task = prog.add_task("training", total=episodes, info="")

        def cb(ep: int, st: dict) -> None:
            prog.update(
                task, advance=1, info=f"pnl {st['pnl']:+.1f} trades {st['trades']} updates {st['updates']}"
            )

        summary = run_train(cfg, out, progress=cb)
    console.print(
        f"trained {episodes} episodes, {summary['updates']} updates in {summary['seconds']:.0f}s; "
        f"model: {summary['model_dir']}; log: {out / 'updates.csv'}"
    )


def _run_config(tick: float, trade_usd: float, sizing: str):  # noqa: ANN202 - lazy import
    from stratforge.trader.evaluation import RunConfig

    if tick <= 0 or 900 % tick > 1e-9:
        _fail(f"--tick must divide 900 seconds, got {tick}")
    return RunConfig(tick_s=tick, trade_size=trade_usd, sizing=_sizing(sizing))


def _load_policy_or_fail(spec: str, flag: str):  # noqa: ANN202 - lazy import
    from stratforge.trader.train import load_trader_policy

    try:
        return load_trader_policy(spec)
    except (FileNotFoundError, ValueError, KeyError, OSError) as exc:
        _fail(f"{flag}: cannot load {spec}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")


def _print_comparison(summary: dict, title: str) -> None:
    unit = summary["unit"]
    table = Table(title=title)
    for col in ("policy", "total PnL", f"mean/{unit} [95% CI]", "trades", "win rate",
                f"model - policy per {unit} [95% CI]", "p (model better)"):  # fmt: skip
        table.add_column(col)
    for name, p in summary["policies"].items():
        ci = p["mean"]
        d = summary.get("paired_difference", {}).get(name)
        dtxt = "" if d is None else f"{d['mean_diff']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}]"
        ptxt = "" if d is None else f"{d['p_greater']:.3g}"
        table.add_row(
            name, f"{p['total_pnl']:+.1f}", f"{ci['mean']:+.2f} [{ci['low']:+.2f}, {ci['high']:+.2f}]",
            str(p.get("trades", "")), f"{p.get('win_rate', 0.0):.1%}", dtxt, ptxt,
        )  # fmt: skip
    console.print(table)
    if "paired_difference" in summary:
        best = summary.get("best_baseline")
        line = (
            f"best non-oracle baseline: {best}; model beats every non-oracle baseline (CI above 0): "
            f"{summary['beats_all_non_oracle']}"
        )
        if "oracle_share" in summary:
            line += f"; share of the oracle's PnL: {summary['oracle_share']:.1%}"
        console.print(line)


@app.command("eval")
def eval_cmd(
    files: list[Path] = typer.Argument(None, help="More replay files (with --replay)."),
    model: Path = typer.Option(None, "--model", "-m", help="Model directory (from `trader train`)."),
    replay: list[Path] = typer.Option(
        None, "--replay", help="Walk-forward on recordings: trader eval --replay FILES... (time order)."
    ),
    train_fraction: float = typer.Option(
        0.5, min=0.0, max=0.95, help="Replays: share of the windows to train on (0: evaluate --model on all)."
    ),
    train_episodes: int = typer.Option(50, min=1, help="Replays: PPO passes over the training part."),
    episodes: int = typer.Option(100, min=2, help="Held-out synthetic episodes."),
    seed_base: int = typer.Option(10_000_000, help="First held-out session seed (>= 10,000,000)."),
    out: Path = typer.Option(Path("runs/trader/eval"), "--out", "-o", help="Output directory."),
    explore: bool = typer.Option(False, help="Seeded sampling instead of the argmax (as `run --explore`)."),
    tick: float = typer.Option(5.0, min=0.5),
    trade_usd: float = typer.Option(10.0, min=1.0, help="Full trade size in USDC."),
    sizing: str = typer.Option("confidence", help="confidence or fixed."),
    lag: str = typer.Option("0,2", help="Synthetic book lag range in seconds, 'min,max' (old: 15,40)."),
    lean: float = typer.Option(0.0, min=0.0, help="Synthetic stale-side thinning (old: 0.25)."),
    ablate: str = typer.Option(
        None, help="Also run the model with these features zeroed, e.g. '3,4' (an ablation)."
    ),
) -> None:
    """Evaluate the model against every baseline through the trading engine, with paired 95% CIs.

    Synthetic (default): held-out seeds, paired by episode. With --replay: walk-forward on the
    recordings (train on the earlier part, evaluate on the later one), paired by market."""
    from stratforge.trader.baselines import BASELINES, make_baseline
    from stratforge.trader.evaluation import evaluate, load_recordings, walk_forward, write_json
    from stratforge.trader.markets.replay import ReplayError
    from stratforge.trader.markets.synthetic import SyntheticConfig
    from stratforge.trader.train import EVAL_SEED_BASE, TrainConfig, plot_equity

    cfg = _run_config(tick, trade_usd, sizing)
    paths = list(replay or []) + list(files or [])
    if files and not replay:
        _fail("replay files go after --replay (trader eval --replay FILES...)")
    if model is not None and not model.exists():
        _fail(f"--model: no such directory {model}")
    agent = None if model is None else _load_policy_or_fail(str(model), "--model")
    if paths:
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            _fail(f"replay file not found: {', '.join(missing)}")
        try:
            session = load_recordings(paths)
        except ReplayError as exc:
            _fail(str(exc))
        tcfg = TrainConfig(episodes=train_episodes, tick_s=tick, trade_usd=trade_usd, sizing=sizing)
        with _progress() as prog:
            task = prog.add_task("walk-forward: training", total=train_episodes, info="")
            try:
                res = walk_forward(
                    session, out, train_fraction, tcfg, agent, cfg,
                    progress=lambda ep, st: prog.update(task, advance=1, info=f"pnl {st['pnl']:+.1f}"),
                )  # fmt: skip
            except ValueError as exc:
                _fail(str(exc))
        summary = res.summary("model")
        summary["files"] = [str(p) for p in paths]
        summary["per_market_pnl"] = res.pnl
        summary["trades"] = res.trades
        write_json(out / "eval.json", summary)
        _print_comparison(summary, f"walk-forward: {res.test_markets} held-out markets "
                                   f"(trained on {res.train_markets}), PnL after fees (USDC)")  # fmt: skip
        console.print(f"wrote {out / 'eval.json'}")
        return
    if agent is None:
        _fail("--model is required (or --replay FILES... for walk-forward)")
    if seed_base < EVAL_SEED_BASE:
        _fail(f"--seed-base must be >= {EVAL_SEED_BASE} (lower seeds are training seeds)")
    cfg.explore = explore
    policies = {"model": agent} | {b: make_baseline(b) for b in BASELINES}
    if ablate:
        from stratforge.trader.evaluation import ablated

        try:
            cols = [int(x) for x in ablate.split(",")]
            if not all(0 <= c < 18 for c in cols):
                raise ValueError
        except ValueError:
            _fail(f"--ablate takes feature indices 0-17 separated by commas, got {ablate!r}")
        abl = ablated(agent, cols)
        policies[abl.name] = abl
    synthetic = SyntheticConfig(lag_s=_lag(lag), imbalance_lean=lean)
    seeds = list(range(seed_base, seed_base + episodes))
    with _progress() as prog:
        task = prog.add_task("evaluating", total=episodes, info="")
        res = evaluate(policies, seeds, synthetic, cfg, progress=lambda j: prog.update(task, advance=1))
    summary = res.summary("model")
    summary |= {"model": str(model), "explore": explore, "sizing": sizing,
                "market": {"lag_s": list(synthetic.lag_s), "imbalance_lean": lean}}  # fmt: skip
    summary["per_episode_pnl"] = res.pnl
    write_json(out / "eval.json", summary)
    png = plot_equity(res, out / "equity.png")
    _print_comparison(summary, f"{episodes} held-out episodes (PnL after fees, USDC)")
    console.print(f"wrote {out / 'eval.json'} and {png}")


@app.command()
def backtest(
    replay: Path = typer.Argument(..., help="Replay JSONL file (docs/replay-format.md)."),
    policy: str = typer.Option(
        "momentum",
        "--policy",
        "-p",
        help="random|momentum|mean_reversion|spot_momentum|oracle|phase5 or a model directory.",
    ),
    out: Path = typer.Option(None, "--out", "-o", help="Write the report and trades as JSON here."),
    tick: float = typer.Option(5.0, min=0.5),
    trade_usd: float = typer.Option(10.0, min=1.0, help="Full trade size in USDC."),
    sizing: str = typer.Option("confidence", help="confidence or fixed."),
    explore: bool = typer.Option(False, help="Seeded sampling instead of the argmax (as `run --explore`)."),
) -> None:
    """Run a model or baseline over a replay file through the trading engine (as `trader run`)."""
    from stratforge.trader.evaluation import backtest as run_backtest
    from stratforge.trader.evaluation import write_json
    from stratforge.trader.markets.replay import ReplayError

    if not replay.exists():
        _fail(f"replay file not found: {replay}")
    pol = _load_policy_or_fail(policy, "--policy")
    cfg = _run_config(tick, trade_usd, sizing)
    cfg.explore = explore
    try:
        with console.status("replaying"):
            rep = run_backtest(pol, replay, cfg)
    except ReplayError as exc:
        _fail(str(exc))
    except ValueError as exc:
        _fail(f"cannot backtest {replay}: {exc}")
    keys = ("pnl", "n_trades", "win_rate", "sharpe_per_trade", "max_drawdown", "open_at_end")
    table = Table(title=f"backtest: {pol.name} on {replay.name}")
    table.add_column("metric")
    table.add_column("value")
    for k in keys:
        v = rep[k]
        table.add_row(k, f"{v:.4f}" if isinstance(v, float) else str(v))
    table.add_row("exits", ", ".join(f"{k} {v}" for k, v in sorted(rep["exit_reasons"].items())) or "none")
    table.add_row("settled by", ", ".join(f"{k} {v}" for k, v in sorted(rep["settled_by"].items())) or "-")
    table.add_row("markets", str(len(rep["per_market"])))
    console.print(table)
    if rep["settled_by"].get("futures_fallback"):
        console.print("[yellow]warning:[/yellow] some markets settled on futures prices (no recorded resolution)")
    if out is not None:
        write_json(out, rep | {"policy": pol.name})
        console.print(f"wrote {out}")


@app.command()
def synth(
    out: Path = typer.Option(..., "--out", "-o", help="Replay JSONL file to write."),
    seed: int = typer.Option(0, min=0),
    windows: int = typer.Option(1, min=1, max=96, help="Consecutive 15-minute windows."),
    assets: str = typer.Option("BTC,ETH,SOL,XRP", help="Comma-separated assets."),
    resolutions: str = typer.Option(
        "venue", help="venue (market_resolved events, as `record` captures), meta, both or none."
    ),
    lag: str = typer.Option("0,2", help="Book lag range in seconds, 'min,max' (old: 15,40)."),
    lean: float = typer.Option(0.0, min=0.0, help="Stale-side thinning (old: 0.25)."),
) -> None:
    """Write a synthetic session in the replay format."""
    from stratforge.trader.markets.messages import ASSETS
    from stratforge.trader.markets.replay import write_session
    from stratforge.trader.markets.synthetic import SyntheticConfig, generate_session

    chosen = tuple(a.strip().upper() for a in assets.split(",") if a.strip())
    bad = [a for a in chosen if a not in ASSETS]
    if bad or not chosen:
        _fail(f"--assets: unknown {', '.join(bad) or '(none)'}; choose from {', '.join(ASSETS)}")
    from stratforge.trader.markets.replay import RESOLUTION_MODES

    if resolutions not in RESOLUTION_MODES:
        _fail(f"--resolutions must be one of {', '.join(RESOLUTION_MODES)}")
    cfg = SyntheticConfig(assets=chosen, n_windows=windows, lag_s=_lag(lag), imbalance_lean=lean)
    session = generate_session(seed, cfg)
    n = write_session(session, out, resolutions)
    console.print(f"wrote {n} lines ({len(session.markets)} markets) to {out}")


cli_ops.register(app)
