"""Read-only views of a run: status tables, hypothesis coverage and the live terminal dashboard."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from stratforge.explore.store import DB_NAME, NoRunError, RunStore, _connect

FAILURE_ALERT = 0.30  #: share of failed iterations that raises an alert
PLATEAU_STD = 2.0  #: std of the last 10 edges under which the search is called a plateau


def open_readonly(state_dir: Path) -> RunStore:
    """Open a run for reading without marking it resumed (status, monitor, report)."""
    db = Path(state_dir) / DB_NAME
    if not db.exists():
        raise NoRunError(f"no exploration run in {state_dir}")
    store = RunStore(Path(state_dir), _connect(db))
    store.run_info()  # raises when the database holds no run
    return store


def _fmt_s(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"


def provider_line(store: RunStore, now: float) -> str | None:
    """The LLM provider's circuit-breaker state as the loop last recorded it, or None (no LLM, or
    never unavailable): "open until 10:32:05 (95 s left) after 5 failures: <last error>"."""
    events = store.events(kind="llm-provider")
    if not events:
        return None
    d = events[-1].data
    state = d.get("state", "?")
    if state != "open":
        return f"{state} (circuit breaker; last change {time.strftime('%H:%M:%S', time.localtime(events[-1].ts))})"
    until = d.get("until")
    when = "" if until is None else time.strftime("%H:%M:%S", time.localtime(until))
    left = "" if until is None else f", {max(0.0, until - now):.0f}s left"
    err = d.get("last_error")
    return (
        f"open until {when}{left}: waiting out the circuit breaker after {d.get('failures', '?')} "
        f"failed attempts" + (f"; last error: {str(err)[:160]}" if err else "")
    )


def summary(store: RunStore, now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    info = store.run_info()
    totals = store.totals()
    config = info.config or {}
    elapsed = (info.updated_at if not info.status.startswith("running") else now) - info.started_at
    max_runtime = float(config.get("max_runtime_s", 36000))
    done = max(0, totals["iterations"] - 1)  # iteration 0 is the starter
    champ = store.champion()
    its = store.iterations(finished_only=True)
    recent = [i.edge for i in its[-10:] if i.edge is not None]
    failures = Counter((i.errors[0] if i.errors else "unknown")[:90] for i in its if i.status == "failed")
    alerts = []
    if totals["iterations"] >= 5 and totals["failed"] / totals["iterations"] > FAILURE_ALERT:
        alerts.append(
            f"failure rate {totals['failed'] / totals['iterations']:.0%} is over {FAILURE_ALERT:.0%}"
        )
    if len(recent) >= 10 and float(np.std(recent)) < PLATEAU_STD:
        alerts.append(f"plateau: std of the last 10 edges is {np.std(recent):.2f} (< {PLATEAU_STD})")
    alerts += [e.message for e in store.events(level="warning")[-3:]]
    return {
        "status": info.status,
        "iteration": done,
        "in_flight": totals["in_flight"],
        "best_edge": totals["best_edge"],
        "champion": champ,
        "elapsed_s": elapsed,
        "remaining_s": max(0.0, max_runtime - elapsed),
        "rate_per_h": done / elapsed * 3600 if elapsed > 0 else 0.0,
        "success_rate": totals["evaluated"] / totals["iterations"] if totals["iterations"] else 0.0,
        "failures": failures.most_common(5),
        "alerts": alerts,
        "cost_usd": totals["cost_usd"],
        "target_edge": config.get("target_edge"),
        "provider": provider_line(store, now),
    }


def status_tables(store: RunStore, now: float | None = None) -> list[Table]:
    s = summary(store, now)
    t = Table(title="Exploration status", show_header=False)
    t.add_column("", style="bold")
    t.add_column("")
    champ = s["champion"]
    rows = [
        ("status", s["status"]),
        ("iteration", f"{s['iteration']} finished, {s['in_flight']} in flight"),
        (
            "champion",
            "-"
            if champ is None
            else f"#{champ.iteration}: {champ.edge:.2f} (holdout {champ.holdout_edge if champ.holdout_edge is None else round(champ.holdout_edge, 2)})",
        ),
        (
            "best edge seen",
            "-" if s["best_edge"] is None else f"{s['best_edge']:.2f} (target {s['target_edge']})",
        ),
        ("elapsed / remaining", f"{_fmt_s(s['elapsed_s'])} / {_fmt_s(s['remaining_s'])}"),
        ("rate", f"{s['rate_per_h']:.1f} iterations/hour"),
        ("success rate", f"{s['success_rate']:.0%}"),
        ("LLM cost", f"${s['cost_usd']:.2f}"),
    ]
    if s["provider"]:
        rows.append(("LLM provider", s["provider"]))
    for k, v in rows:
        t.add_row(k, str(v))
    tables = [t]
    if s["failures"]:
        f = Table(title="Failure reasons")
        f.add_column("count", justify="right")
        f.add_column("reason")
        for reason, n in s["failures"]:
            f.add_row(str(n), reason)
        tables.append(f)
    if s["alerts"]:
        a = Table(title="Alerts", style="yellow")
        a.add_column("alert")
        for msg in s["alerts"]:
            a.add_row(msg)
        tables.append(a)
    return tables


def hypotheses_table(store: RunStore) -> Table:
    shipped = Path(__file__).resolve().parent / "hypotheses.json"
    titles = {h["id"]: h["title"] for h in json.loads(shipped.read_text()).get("hypotheses", [])}
    coverage = store.hypothesis_coverage(list(titles))
    t = Table(title="Hypotheses")
    for col in ("id", "hypothesis", "iterations", "evaluated", "best edge"):
        t.add_column(col, justify="right" if col in ("iterations", "evaluated", "best edge") else "left")
    for h, c in coverage.items():
        best = "-" if c["best_edge"] is None else f"{c['best_edge']:.2f}"
        t.add_row(h, titles.get(h, h), str(c["iterations"]), str(c["evaluated"]), best)
    return t


def _recent_table(store: RunStore, n: int = 5) -> Table:
    t = Table(title=f"Last {n} results")
    for col in ("#", "template / proposer", "status", "edge", "sims"):
        t.add_column(col)
    for it in store.iterations(finished_only=True)[-n:]:
        sims = max((int(k) for k in it.stage_results if k.isdigit()), default=0)
        edge = "-" if it.edge is None else f"{it.edge:.2f}"
        t.add_row(str(it.number), it.template or it.proposer or "", it.status, edge, str(sims or ""))
    return t


def dashboard(store: RunStore, now: float | None = None) -> Group:
    s = summary(store, now)
    champ = s["champion"]
    head = Table.grid(padding=(0, 3))
    head.add_row(
        f"[bold]iteration[/bold] {s['iteration']}",
        f"[bold]champion[/bold] {'-' if champ is None else f'{champ.edge:.2f}'}",
        f"[bold]holdout[/bold] {'-' if champ is None or champ.holdout_edge is None else f'{champ.holdout_edge:.2f}'}",
        f"[bold]time left[/bold] {_fmt_s(s['remaining_s'])}",
        f"[bold]rate[/bold] {s['rate_per_h']:.0f}/h",
    )
    events = store.events()[-6:]
    activity = "\n".join(
        f"{time.strftime('%H:%M:%S', time.localtime(e.ts))} {e.kind}: {e.message}" for e in events
    )
    templates = ", ".join(t.name for t in store.templates()) or "none yet"
    alerts = "\n".join(s["alerts"]) or "none"
    provider = [Panel(s["provider"], title="LLM provider")] if s["provider"] else []
    return Group(
        Panel(head, title=f"stratforge explore: {s['status']}"),
        *provider,
        Panel(activity or "waiting for the first iteration", title="activity"),
        _recent_table(store),
        Panel(templates, title="templates extracted"),
        Panel(alerts, title="alerts", style="yellow" if s["alerts"] else ""),
    )


def run_monitor(
    store: RunStore, *, refresh: float = 5.0, once: bool = False, console: Console | None = None
) -> None:
    console = console or Console()
    if once:
        console.print(dashboard(store))
        return
    try:
        with Live(dashboard(store), console=console, refresh_per_second=4) as live:
            while True:
                time.sleep(refresh)
                live.update(dashboard(store))
    except KeyboardInterrupt:
        pass
