"""CLI commands of stratforge.trader: train, eval, backtest, synth."""

from __future__ import annotations

import json
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
    lag: str = typer.Option("15,40", help="Synthetic book lag range in seconds, 'min,max'."),
    lean: float = typer.Option(
        0.25, min=0.0, help="Synthetic stale-side thinning (0: the book shows no tell)."
    ),
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


@app.command("eval")
def eval_cmd(
    model: Path = typer.Option(..., "--model", "-m", help="Model directory (from `trader train`)."),
    episodes: int = typer.Option(100, min=2, help="Held-out synthetic episodes."),
    seed_base: int = typer.Option(10_000_000, help="First held-out session seed (>= 10,000,000)."),
    out: Path = typer.Option(Path("runs/trader/eval"), "--out", "-o", help="Output directory."),
    greedy: bool = typer.Option(False, help="Argmax actions instead of sampling."),
    tick: float = typer.Option(5.0, min=0.5),
    trade_usd: float = typer.Option(10.0, min=1.0),
    latency: float = typer.Option(0.5, min=0.0),
    lag: str = typer.Option("15,40", help="Synthetic book lag range in seconds, 'min,max'."),
    lean: float = typer.Option(0.25, min=0.0, help="Synthetic stale-side thinning."),
) -> None:
    """Evaluate a model vs all baselines on held-out synthetic seeds: paired PnL differences with 95%
    confidence intervals, the share of the oracle's PnL, eval.json and equity.png."""
    from stratforge.trader.baselines import BASELINES, make_baseline
    from stratforge.trader.broker import BrokerConfig
    from stratforge.trader.env import EnvConfig
    from stratforge.trader.markets.synthetic import SyntheticConfig
    from stratforge.trader.train import EVAL_SEED_BASE, evaluate, load_trader_policy, plot_equity

    if seed_base < EVAL_SEED_BASE:
        _fail(f"--seed-base must be >= {EVAL_SEED_BASE} (lower seeds are training seeds)")
    if not model.exists():
        _fail(f"--model: no such directory {model}")
    if 900 % tick > 1e-9:
        _fail(f"--tick must divide 900 seconds, got {tick}")
    try:
        agent = load_trader_policy(str(model))
    except (FileNotFoundError, ValueError, KeyError) as exc:
        _fail(f"--model: cannot load {model}: {exc}")
    policies = {"model": agent} | {b: make_baseline(b) for b in BASELINES}
    env_cfg = EnvConfig(
        tick_s=tick,
        broker=BrokerConfig(trade_usd=trade_usd, latency_s=latency),
        synthetic=SyntheticConfig(lag_s=_lag(lag), imbalance_lean=lean),
    )
    seeds = list(range(seed_base, seed_base + episodes))
    with _progress() as prog:
        task = prog.add_task("evaluating", total=episodes, info="")
        res = evaluate(
            policies, seeds, env_cfg, greedy=greedy, progress=lambda j: prog.update(task, advance=1)
        )
    summary = res.summary("model")
    summary["model"] = str(model)
    summary["greedy"] = greedy
    summary["per_episode_pnl"] = res.pnl
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(json.dumps(summary, indent=2))
    png = plot_equity(res, out / "equity.png")
    table = Table(title=f"{episodes} held-out episodes (PnL after fees, USDC)")
    for col in (
        "policy",
        "total PnL",
        "mean/episode [95% CI]",
        "trades",
        "win rate",
        "fees",
        "model - policy [95% CI]",
    ):
        table.add_column(col)
    for name, p in summary["policies"].items():
        ci = p["pnl_per_episode"]
        d = summary["paired_difference"].get(name)
        dtxt = "" if d is None else f"{d['mean']:+.2f} [{d['lo']:+.2f}, {d['hi']:+.2f}]"
        table.add_row(
            name, f"{p['total_pnl']:+.1f}", f"{ci['mean']:+.2f} [{ci['lo']:+.2f}, {ci['hi']:+.2f}]",
            str(p["trades"]), f"{p['win_rate']:.1%}", f"{p['fees_paid']:.1f}", dtxt,
        )  # fmt: skip
    console.print(table)
    console.print(
        f"oracle share captured: {summary.get('oracle_share', float('nan')):.1%}; "
        f"beats every non-oracle baseline (CI above 0): {summary['beats_all_non_oracle']}"
    )
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
    out: Path = typer.Option(None, "--out", "-o", help="Write the broker report as JSON here."),
    tick: float = typer.Option(5.0, min=0.5),
    trade_usd: float = typer.Option(10.0, min=1.0),
    latency: float = typer.Option(0.5, min=0.0),
    greedy: bool = typer.Option(True, help="Argmax actions (sampling is seeded when off)."),
) -> None:
    """Run a model or baseline over a replay file through the paper broker."""
    from stratforge.trader.broker import BrokerConfig
    from stratforge.trader.env import EnvConfig
    from stratforge.trader.markets.replay import ReplayError
    from stratforge.trader.train import backtest as run_backtest
    from stratforge.trader.train import load_trader_policy

    if not replay.exists():
        _fail(f"replay file not found: {replay}")
    try:
        pol = load_trader_policy(policy)
    except (FileNotFoundError, ValueError) as exc:
        _fail(f"--policy: {exc}")
    env_cfg = EnvConfig(tick_s=tick, broker=BrokerConfig(trade_usd=trade_usd, latency_s=latency))
    try:
        with console.status("replaying"):
            rep = run_backtest(pol, replay, env_cfg, greedy=greedy)
    except ReplayError as exc:
        _fail(str(exc))
    except ValueError as exc:
        _fail(f"cannot backtest {replay}: {exc}")
    keys = ("pnl", "roi", "n_trades", "win_rate", "sharpe_per_trade", "max_drawdown", "fees_paid", "settled")
    table = Table(title=f"backtest: {pol.name} on {replay.name}")
    table.add_column("metric")
    table.add_column("value")
    for k in keys:
        v = rep[k]
        table.add_row(k, f"{v:.4f}" if isinstance(v, float) else str(v))
    table.add_row("markets", str(len(rep["markets"])))
    console.print(table)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(
            json.dumps({k: v for k, v in rep.items() if k != "equity"} | {"policy": pol.name}, indent=2)
        )
        console.print(f"wrote {out}")


@app.command()
def synth(
    out: Path = typer.Option(..., "--out", "-o", help="Replay JSONL file to write."),
    seed: int = typer.Option(0, min=0),
    windows: int = typer.Option(1, min=1, max=96, help="Consecutive 15-minute windows."),
    assets: str = typer.Option("BTC,ETH,SOL,XRP", help="Comma-separated assets."),
) -> None:
    """Write a synthetic session in the replay format."""
    from stratforge.trader.markets.messages import ASSETS
    from stratforge.trader.markets.replay import write_session
    from stratforge.trader.markets.synthetic import SyntheticConfig, generate_session

    chosen = tuple(a.strip().upper() for a in assets.split(",") if a.strip())
    bad = [a for a in chosen if a not in ASSETS]
    if bad or not chosen:
        _fail(f"--assets: unknown {', '.join(bad) or '(none)'}; choose from {', '.join(ASSETS)}")
    session = generate_session(seed, SyntheticConfig(assets=chosen, n_windows=windows))
    n = write_session(session, out)
    console.print(f"wrote {n} lines ({len(session.markets)} markets) to {out}")


from stratforge.trader import cli_ops  # noqa: E402,F401
